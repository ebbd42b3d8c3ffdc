// Storage for an index's arrays: either a std::vector the index owns, or a read-only view of
// memory someone else owns (the pages of a memory-mapped file). A loaded index searches the
// file's bytes in place; the first mutation copies an array into owned memory (copy-on-write),
// so the file is never written and the index behaves exactly like one built by add().
#pragma once

#include <cstddef>
#include <vector>

namespace hashmatch {

template <class T>
class Array {
 public:
  Array() = default;

  /// A view of n elements at `data`, which the caller keeps alive and unchanged for as long as
  /// this array (and every copy of it) views them.
  static Array view(const T* data, size_t n) noexcept {
    Array a;
    a.external_ = data;
    a.external_size_ = n;
    a.is_view_ = true;
    return a;
  }

  /// Hot loops take this once: the view test is one branch per call, not per element.
  const T* data() const noexcept { return is_view_ ? external_ : owned_.data(); }
  size_t size() const noexcept { return is_view_ ? external_size_ : owned_.size(); }
  bool empty() const noexcept { return size() == 0; }
  const T& operator[](size_t i) const noexcept { return data()[i]; }
  bool is_view() const noexcept { return is_view_; }

  /// The owned vector, for writing. A view is first copied into it (may throw bad_alloc, in
  /// which case the array is unchanged); after that it stays owned.
  std::vector<T>& mut() {
    if (is_view_) {
      std::vector<T> copy(external_, external_ + external_size_);
      owned_.swap(copy);
      is_view_ = false;
      external_ = nullptr;
      external_size_ = 0;
    }
    return owned_;
  }

  /// Adopts `v` as the owned contents (dropping any view); `v` receives the old owned vector.
  void swap(std::vector<T>& v) noexcept {
    owned_.swap(v);
    is_view_ = false;
    external_ = nullptr;
    external_size_ = 0;
  }

  /// Bytes of memory this array allocated (0 for a view: the viewed memory is not ours).
  size_t capacity_bytes() const noexcept { return is_view_ ? 0 : owned_.capacity() * sizeof(T); }

 private:
  std::vector<T> owned_;
  const T* external_ = nullptr;
  size_t external_size_ = 0;
  bool is_view_ = false;
};

}  // namespace hashmatch

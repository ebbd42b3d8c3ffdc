// The two places where the C++ core meets the Python runtime:
//  * hm_poll_signals: parallel_for's interrupt poll (Ctrl-C in long calls);
//  * hm_translate_exception: maps C++ exceptions to the hashmatch error family. Called by Cython
//    inside its catch(...) block (`except +hm_translate_exception` in _core.pxd).
// Both may run without the GIL held and take it themselves. Written in C++ rather than Cython
// so that a pending KeyboardInterrupt stays set instead of being reported as unraisable.
#pragma once

#include <Python.h>

#include <new>
#include <stdexcept>

#include "hashmatch/parallel_for.h"

static PyObject* hm_invalid_argument = nullptr;  // hashmatch.errors.InvalidArgument, set at import

static inline void hm_set_invalid_argument(PyObject* type) {
  Py_XINCREF(type);
  Py_XSETREF(hm_invalid_argument, type);
}

// Returns nonzero (leaving the exception set) when a signal handler raised, e.g. on Ctrl-C.
static inline int hm_poll_signals(void*) {
  PyGILState_STATE gil = PyGILState_Ensure();
  const int raised = PyErr_CheckSignals() != 0;
  PyGILState_Release(gil);
  return raised;
}

static inline int hm_translate_exception() {
  PyGILState_STATE gil = PyGILState_Ensure();
  try {
    throw;
  } catch (const hashmatch::Cancelled&) {
    // The interrupt poll already set KeyboardInterrupt (or another signal handler's error).
    if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(hm_invalid_argument ? hm_invalid_argument : PyExc_ValueError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
  PyGILState_Release(gil);
  return -1;
}

"""python-threatexchange CLI extension: PDQ (and vPDQ, where pytx's vPDQ extension imports)
matched by hashmatch's indexes.

Add it to the ``threatexchange`` CLI with::

    threatexchange config extensions add hashmatch.threatexchange_extension

It brings the signal type ``hashmatch_pdq`` (:class:`hashmatch.threatexchange.HashmatchPdqSignal`,
next to pytx's own ``pdq``, whose name the CLI keeps for itself), indexed by
:class:`hashmatch.threatexchange.PDQIndex`.
"""

from __future__ import annotations

from typing import Any

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from hashmatch.threatexchange import HashmatchPdqSignal

__all__ = ["TX_MANIFEST"]

_signal_types: tuple[Any, ...] = (HashmatchPdqSignal,)

TX_MANIFEST = ThreatExchangeExtensionManifest(signal_types=_signal_types)

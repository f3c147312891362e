"""``serve --ray`` stops on SIGINT and SIGTERM however it was started.

:func:`loopml.serving.ray_serve.stop_on_signals` turns both into
``KeyboardInterrupt`` (so ``serve.shutdown`` runs), also when SIGINT was
ignored on entry (a script's background job), and puts the handlers back.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from loopml.serving.ray_serve import stop_on_signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_each_signal_interrupts_the_block(signum: signal.Signals) -> None:
    before = signal.getsignal(signum)
    with pytest.raises(KeyboardInterrupt, match=signum.name), stop_on_signals():
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler interrupts this wait
        pytest.fail("the signal did not interrupt the block")
    assert signal.getsignal(signum) is before


def test_sigint_ignored_on_entry_still_interrupts_and_is_ignored_after() -> None:
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGINT"), stop_on_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            pytest.fail("SIGINT did not interrupt the block")
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, saved)

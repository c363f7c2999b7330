"""Variable scopes and the reuse rules' naming."""
import threading

import pytest

import cgdn
from cgdn import params


def test_scopes_are_per_thread():
    seen = {}
    barrier = threading.Barrier(2)

    def work(label):
        with cgdn.variable_scope(label):
            barrier.wait()
            seen[label] = params.current_scope().name

    threads = [threading.Thread(target=work, args=(n,)) for n in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"x": "x", "y": "y"}
    assert params.current_scope().name == ""


def test_variable_scope_validation():
    with pytest.raises(ValueError, match="name"):
        with cgdn.variable_scope(""):
            pass
    with pytest.raises(TypeError, match="reuse"):
        with cgdn.variable_scope("a", reuse="x"):
            pass

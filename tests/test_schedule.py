"""The one schedule of periodic callbacks, and the files they write."""

from types import SimpleNamespace

import pytest

from betavae.base.files import atomic, write_json
from betavae.callbacks.schedule import due


@pytest.mark.parametrize(
    ("every", "last", "expected"),  # epochs done 1..6 of max_epochs=6
    [
        (1, False, [1, 2, 3, 4, 5]),
        (1, True, [1, 2, 3, 4, 5, 6]),
        (2, False, [2, 4]),
        (2, True, [2, 4, 6]),
        (4, False, [4]),
        (0, False, []),
        (0, True, []),
    ],
)
def test_due_epochs(every, last, expected):
    done = [e + 1 for e in range(6) if due(SimpleNamespace(current_epoch=e, max_epochs=6), every, last)]
    assert done == expected


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = write_json(tmp_path / "metrics.json", {"a": 1})
    with pytest.raises(RuntimeError), atomic(path) as tmp:
        tmp.write_text('{"a": ')  # half written, then the writer dies
        raise RuntimeError("killed")
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]

import builtins
import sys

from eyesdk.progress import Progress, track


def _hide_tqdm(monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("no tqdm")
        return real(name, *args, **kwargs)

    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setattr(builtins, "__import__", fake)


def test_track_yields_everything_with_or_without_a_bar(capsys):
    assert list(track(range(5), "x")) == list(range(5))
    assert list(track(iter([1, 2]), "x", enabled=False)) == [1, 2]


def test_plain_lines_without_tqdm(monkeypatch, capsys):
    _hide_tqdm(monkeypatch)
    with Progress(2, "bench", plain_lines=True) as bar:
        bar.step("latency")
        bar.step("drift")
    assert capsys.readouterr().err.splitlines() == ["[bench] latency", "[bench] drift"]


def test_disabled_prints_nothing(monkeypatch, capsys):
    _hide_tqdm(monkeypatch)
    with Progress(1, "bench", enabled=False, plain_lines=True) as bar:
        bar.step("latency")
    assert capsys.readouterr().err == ""

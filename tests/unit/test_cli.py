import pytest

from churn import __version__
from churn.cli import build_parser, main


def test_every_mode_takes_the_common_options():
    parser = build_parser()
    for argv in (["train"], ["predict", "--input", "x.csv"], ["evaluate", "--input", "x.csv"]):
        args = parser.parse_args([*argv, "-c", "other.yaml", "-q"])
        assert str(args.config) == "other.yaml" and args.quiet


def test_predict_requires_input(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["predict"])
    assert exit_info.value.code == 2
    assert "--input" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert __version__ in capsys.readouterr().out


def test_main_maps_a_config_error_to_exit_2_and_one_line(tmp_path, capsys):
    assert main(["train", "-c", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.yaml" in err[0]


@pytest.mark.parametrize(
    ("host", "token", "warned"),
    [("127.0.0.1", None, False), ("localhost", None, False), ("::1", None, False), ("0.0.0.0", None, True),
     ("10.0.0.5", None, True), ("0.0.0.0", "s3cret", False)],
)  # fmt: skip
def test_serving_a_non_loopback_address_without_a_token_is_warned(host, token, warned, monkeypatch, caplog):
    from churn.service.server import warn_if_open

    monkeypatch.delenv("CHURN_API_TOKEN", raising=False)
    if token:
        monkeypatch.setenv("CHURN_API_TOKEN", token)
    assert warn_if_open(host) is warned
    assert ("without CHURN_API_TOKEN" in caplog.text) is warned

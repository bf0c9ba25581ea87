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


def test_the_common_options_work_before_the_mode_too():
    parser = build_parser()
    args = parser.parse_args(["-q", "-c", "other.yaml", "predict", "--input", "x.csv"])
    assert args.quiet and str(args.config) == "other.yaml" and args.mode == "predict"
    assert not parser.parse_args(["predict", "--input", "x.csv"]).quiet  # the default, when given nowhere


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "--inptu", "x.csv"], "unknown option --inptu; did you mean --input?"),
        (["models", "prune", "--keep", "2", "--dryrun"], "unknown option --dryrun; did you mean --dry-run?"),
        (["train", "--dat=x.csv"], "unknown option --dat; did you mean --data?"),
    ],
)
def test_a_mistyped_option_is_named_with_the_closest_one(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {message}") and "--help" in err[0]


@pytest.mark.parametrize(("argv0", "expected"), [("main.py", "python main.py"), ("/usr/bin/churn", "churn")])
def test_the_help_hint_names_the_command_the_user_typed(argv0, expected, capsys):
    from churn.cli.parser import program_name

    assert program_name(argv0) == expected
    with pytest.raises(SystemExit):
        build_parser(program_name(argv0)).parse_args(["predict"])
    assert f"run `{expected} predict --help`" in capsys.readouterr().err


def test_track_without_mlflow_names_the_flag_not_the_config(write_config, monkeypatch, capsys):
    from churn.store import tracking

    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None if name == "mlflow" else real(name))
    assert main(["train", "--track", "-c", str(write_config())]) == 2  # the config says tracking.enabled: false
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --track asks for MLflow tracking but MLflow is not installed; install it with "
                   f"{tracking.INSTALL}, or train without --track"]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "--input", "x.csv", "--if-exists", "append"], "--if-exists applies to --output-table"),
        (["predict", "--input", "x.csv", "--output", "sqlite:///x.db", "--output-table", "t", "--overwrite",
          "--if-exists", "append"], "--overwrite replaces the table, --if-exists append does not"),
        (["predict", "--input", "sqlite:///x.db", "--table", "t", "--engine", "dask", "--output", "out"],
         "--engine dask reads and writes files only"),
        (["train", "--table", "customers"], "--table and --query read from a database: give its URL"),
        (["monitor", "--input", "x.csv", "--query", "select 1"], "--table and --query read from a database URL"),
    ],
)  # fmt: skip
def test_database_options_that_do_not_fit_are_one_line(write_config, argv, message, capsys):
    assert main([*argv, "-c", str(write_config())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_init_names_a_database_url_instead_of_folding_it_into_a_path(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["init", "--data", "postgresql://churn@db/crm", "--target", "Churn"])
    assert exit_info.value.code == 2 and "postgresql:// is a database; init infers a config from a file" in (
        capsys.readouterr().err
    )


def test_table_and_query_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", "--data", "sqlite:///x.db", "--table", "t", "--query", "select 1"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_a_table_alone_reads_the_database_data_source_names(write_config, capsys):
    config = write_config({"data.source": {"url": "sqlite:///nowhere/crm.db", "password_env": "PW"}})
    assert main(["train", "-c", str(config), "--table", "customers"]) == 2
    assert "sqlite:///nowhere/crm.db: database file nowhere/crm.db not found" in capsys.readouterr().err

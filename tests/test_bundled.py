"""{hpcopt_data}/NAME in a data path: the file bundled with the installed package."""

import pytest

from hpcopt import bundled
from hpcopt.config import open_config_text, parse_run
from hpcopt.errors import ConfigError
from hpcopt.sweep.config import parse_sweep_tables

FIT = """
[model]
name = "xpcs:homodyne"
[data]
path = "{path}"
[parameters]
D0 = {{ min = 1e3, max = 3e4 }}
"""


def test_the_data_directory_is_the_installed_packages():
    import hpcopt
    from pathlib import Path
    assert bundled.data_dir() == Path(hpcopt.__file__).parent / "data"
    assert (bundled.data_dir() / "xpcs_demo.h5").is_file()


def test_expand():
    assert bundled.expand("{hpcopt_data}/xpcs_demo.h5") == str(bundled.data_dir() /
                                                                "xpcs_demo.h5")
    assert bundled.expand("data/x.dat") == "data/x.dat"
    with pytest.raises(ValueError, match="unknown placeholder {hpcopt_dat}"):
        bundled.expand("{hpcopt_dat}/xpcs_demo.h5")
    with pytest.raises(ValueError, match="expected {hpcopt_data}/NAME"):
        bundled.expand("{hpcopt_data}xpcs_demo.h5")


def parse(path, tmp_path):
    root, cf = open_config_text(FIT.format(path=path), tmp_path / "c.toml")
    return parse_sweep_tables(root, cf, parse_run(root))


def test_a_sweep_config_names_bundled_data(tmp_path):
    cfg = parse("{hpcopt_data}/xpcs_demo.h5", tmp_path)
    assert cfg.data_path == bundled.data_dir() / "xpcs_demo.h5"
    assert parse("c2.h5", tmp_path).data_path == tmp_path / "c2.h5"     # relative: the config's


def test_a_misspelt_placeholder_names_the_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse("{hpcopt-data}/xpcs_demo.h5", tmp_path)
    assert err.value.key == "data.path" and "unknown placeholder {hpcopt-data}" in str(err.value)

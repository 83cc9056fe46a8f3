"""TOML nesting depth is checked before any work: exit 2 with one message, never a
RecursionError traceback (at 1, 2 and 3 ranks, and in-process)."""

import pytest

from hpcopt.errors import ConfigError
from hpcopt.tomlread import MAX_NESTING, load_toml

from hpctest import RANKS, run, write_config

HEAD = '[objective]\nfunction = "testobj:quadratic"\n[parameters]\n'
DEEP = {
    "arrays": HEAD + "x = " + "[" * 100_000 + "]" * 100_000 + "\n",
    "inline tables": HEAD + "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
    "dotted keys": HEAD + ".".join(["a"] * 5000) + " = 1\n",
    "table headers": HEAD + "[" + ".".join(["t"] * 200) + "]\nv = 1\n",
}


@pytest.mark.parametrize("case", list(DEEP))
def test_too_deep_nesting_is_a_config_error(tmp_path, case):
    path = write_config(tmp_path / "deep.toml", DEEP[case])
    with pytest.raises(ConfigError, match=f"deep.toml: invalid TOML: tables or arrays nested "
                                          f"deeper than {MAX_NESTING} levels"):
        load_toml(path)


def test_nesting_up_to_the_limit_is_read(tmp_path):
    depth = MAX_NESTING - 1                      # the root table is one level
    path = write_config(tmp_path / "ok.toml", "x = " + "[" * depth + "1" + "]" * depth + "\n")
    data, _ = load_toml(path)
    value = data["x"]
    for _ in range(depth):
        value = value[0]
    assert value == 1
    deeper = write_config(tmp_path / "deeper.toml", "x = " + "[" * (depth + 1) + "]" * (depth + 1))
    with pytest.raises(ConfigError, match="nested deeper"):
        load_toml(deeper)


@pytest.mark.mpi
@pytest.mark.parametrize("n", RANKS)
def test_deep_config_exits_2_at_every_rank_count(tmp_path, n):
    path = write_config(tmp_path / "deep.toml", DEEP["arrays"])
    proc = run(["sweep", path], n=n, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"hpcopt: error: {path}: invalid TOML: tables or arrays nested deeper than "
        f"{MAX_NESTING} levels"]

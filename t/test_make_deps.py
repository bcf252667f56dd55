"""`make` on a machine without what it needs names what is missing and
`make deps`, before the compiler or nginx's configure run (the Makefile's
check-deps, file tests only)."""

import subprocess

from harness import ROOT


def make_n(*args):
    return subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT)] + list(args),
                          capture_output=True, text=True, timeout=60)


def test_no_nginx_tree_is_named_with_make_deps():
    r = make_n("NGINX_SRC=/nonexistent")
    assert r.returncode != 0
    assert ("missing /nonexistent (no nginx source tree: nginx-dev, or set NGINX_SRC); "
            "run `make deps`") in r.stderr, r.stderr
    assert "g++" not in r.stdout and "configure" not in r.stdout


def test_a_missing_header_is_named_with_its_package():
    # DEP_FILES is the list of FILE:PACKAGE the check looks for
    r = make_n("module", "DEP_FILES=/usr/include/jwt.h:libjwt-dev /nonexistent/cJSON.h:libcjson-dev")
    assert r.returncode != 0
    assert "missing /nonexistent/cJSON.h (libcjson-dev); run `make deps`" in r.stderr, r.stderr
    assert "jwt.h" not in r.stderr


def test_the_goals_that_install_first_are_not_checked():
    # make deps installs what is missing; make clean needs nothing
    for goal in ("deps", "clean"):
        r = make_n(goal, "NGINX_SRC=/nonexistent")
        assert r.returncode == 0 and "missing" not in r.stderr, (goal, r.stderr)


def test_with_everything_installed_make_says_nothing_about_dependencies():
    # (not `all`: make -n still runs the module's recipe, a sub-make's)
    r = make_n("core", "tool-server")
    assert r.returncode == 0, r.stderr
    assert "missing" not in r.stderr

"""ENV/LABEL values quoted by envlock.replay.quote come back unchanged from real images (THREATS.md B2).

Both builders: the SDK's legacy builder and BuildKit through a docker CLI.
``FROM scratch`` needs no base image and runs no container, so this is quick.
"""

from __future__ import annotations

import subprocess

import pytest

from envlock.replay.quote import key_value

NASTY = "evil\" 'q' $(id) `id` ${AWS_SECRET_ACCESS_KEY} $HOME \\ ; | & # EOF <<EOF >x"


@pytest.mark.docker
@pytest.mark.parametrize("builder", ["legacy", "buildkit"])
def test_env_and_label_values_come_back_unchanged_from_a_real_image(docker_client, tmp_path, builder):
    from envlock.replay.buildkit_cli import find_buildkit_cli

    env = {"XLA_FLAGS": '--x="/tmp/$(id)" `id` ${HOME} $HOME \\ ; | & # EOF', "OMP_NUM_THREADS": "4'\\"}
    label = NASTY
    lines = [
        "# envlock test: values through quote.py",
        "FROM scratch",
        "ENV " + " ".join(key_value(k, v) for k, v in env.items()),
        "LABEL " + key_value("org.envlock.test", label),
        "",
    ]
    (tmp_path / "Dockerfile").write_text("\n".join(lines), encoding="utf-8")
    tag = f"envlock-test/quote:{builder}"
    if builder == "legacy":
        image, _ = docker_client.images.build(path=str(tmp_path), tag=tag, rm=True)
        config = image.attrs["Config"]
    else:
        cli = find_buildkit_cli()
        if cli is None:
            pytest.skip("no docker CLI that builds with BuildKit")
        argv = [cli.path, "buildx", "build", "--load"] if cli.mode == "buildx" else [cli.path, "build"]
        done = subprocess.run(
            argv + ["-q", "-t", tag, str(tmp_path)],
            env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        config = docker_client.images.get(tag).attrs["Config"]
    try:
        got_env = dict(item.split("=", 1) for item in config["Env"] or [])
        for key, value in env.items():
            assert got_env[key] == value
        assert config["Labels"]["org.envlock.test"] == label
    finally:
        docker_client.images.remove(tag, force=True)

"""The one adapter between envlock and a Docker engine.

Everything Docker-specific lives here and everything it returns is envlock's
own type (``ImageInfo``, ``BuildResult``, ``RunResult``), so the planner,
renderer and verifier never see an SDK object.  The SDK client is created on
first use, never at import time (``envlock --help`` must not touch a socket).

Two ways to build, chosen deliberately (``choose_builder``):

* **BuildKit through a docker CLI** (preferred when one is found).  BuildKit
  gives build secrets (``RUN --mount=type=secret``: the ``--ca-cert`` of a
  TLS-intercepting proxy is used by pip and apt and is in no layer) and builds
  independent stages in parallel (the replay Dockerfile's Python stage and its
  OS-package step overlap; the legacy builder runs them one after the other);
  cache mounts are available to the renderer too.  BuildKit needs no
  ``# syntax=`` line for ``RUN --mount`` on 20.10 (its built-in frontend has
  it), which matters here: a ``# syntax=`` image would have to be pulled.
  The SDK cannot reach BuildKit (docker-py #2230: it speaks only
  the legacy ``/build`` API), so we drive a CLI that can: a 20.10 client
  (Debian's ``docker.io``) with ``DOCKER_BUILDKIT=1`` has BuildKit built in;
  clients from 23.0 on need the ``buildx`` plugin, and without it
  ``DOCKER_BUILDKIT=1 docker build`` fails ("BuildKit is enabled but the
  buildx component is missing").  On this machine the ``docker`` first on
  PATH is such a 28.x client without buildx, while ``/usr/bin/docker`` is
  20.10: we probe every candidate rather than trusting PATH.
* **The SDK's legacy builder** when no BuildKit-capable CLI exists.  It
  needs nothing but the engine socket.  Without secrets, a CA certificate
  must be kept out of the final image by the Dockerfile itself (a build
  stage that is not shipped), which the renderer does when told
  ``buildkit=False``.

The SDK stays in charge of everything that is not a build: ping, inspecting
and resolving images, importing a root filesystem, running the verification
container, saving images.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from envlock.errors import EngineError, EnvlockError
from envlock.records import field, record
from envlock.replay.buildkit_cli import BuildkitCli, find_buildkit_cli
from envlock.replay.context import ContextFile, context_tar, write_context_dir
from envlock.replay.progress import Progress, run_streaming

BUILDERS = ("auto", "sdk", "buildkit")

# How to get an engine, printed whenever none answers.
START_ENGINE_HINT = (
    "start a Docker engine (`sudo systemctl start docker`, or `sudo dockerd &`; "
    "on Debian/Ubuntu install it with `sudo apt-get install docker.io`), or point "
    "DOCKER_HOST at one; without Docker, `envlock replay --into-venv DIR` replays "
    "the Python layer into a virtualenv"
)

# The context's files get fixed metadata so the same build context always
# hashes the same way and rebuilds hit the cache (repo2docker does the same).


# --- envlock's own types ----------------------------------------------------------


@record
class EngineInfo:
    server_version: str
    api_version: str
    os: str
    architecture: str


@record
class ImageInfo:
    id: str  # sha256:<64 hex>, the image (config) digest
    tags: tuple[str, ...]
    repo_digests: tuple[str, ...]  # name@sha256:..., only for images that came from a registry
    size: int
    labels: Mapping[str, str]
    created: str
    architecture: str | None = None


@record
class BuildRequest:
    files: tuple[ContextFile, ...]
    dockerfile: str = "Dockerfile"
    tag: str | None = None
    network: str | None = "host"
    # BuildKit secrets: id -> file on this machine.  Never sent as a build
    # argument (those are recorded in the image history).
    secrets: Mapping[str, str] = field(default_factory=dict)
    # Ask the engine not to use its cache (benchmarks: cold builds).
    no_cache: bool = False
    # Extra labels applied by the builder (the Dockerfile carries its own).
    labels: Mapping[str, str] = field(default_factory=dict)


@record
class BuildResult:
    image_id: str
    tag: str | None
    builder: str  # "sdk" or "buildkit" ("none" when reused)
    seconds: float
    log: tuple[str, ...]  # the build's output lines, for reports and failures
    # Nothing was built: the tag already names the image of this same context.
    reused: bool = False


@record
class RunResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


@record
class BuilderChoice:
    builder: str  # "sdk" or "buildkit"
    cli: BuildkitCli | None
    reason: str


# --- the engine --------------------------------------------------------------------


class DockerEngine:
    """A Docker engine reached through the SDK (and, for BuildKit builds, a CLI)."""

    def __init__(self, client=None, timeout: int = 600) -> None:
        self._client = client
        self._timeout = timeout
        self._info: EngineInfo | None = None
        # Why each pull that found nothing failed (ref -> first line of the error), for a report to show.
        self.pull_failures: dict[str, str] = {}

    # The SDK client, created on first use.
    @property
    def client(self):
        if self._client is None:
            try:
                import docker
            except ImportError:  # pragma: no cover - docker is a dependency
                raise EngineError(
                    "the Docker SDK for Python (`docker`) is not installed", hint="pip install docker"
                ) from None
            try:
                self._client = docker.from_env(timeout=self._timeout)
            except Exception as exc:
                raise EngineError(f"no Docker engine is reachable ({_short(exc)})", hint=START_ENGINE_HINT) from None
        return self._client

    @property
    def api(self):
        return self.client.api

    def ping(self) -> EngineInfo:
        """Check that the engine answers; an ``EngineError`` saying how to start one otherwise."""
        if self._info is not None:
            return self._info
        try:
            self.client.ping()
            version = self.client.version()
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"no Docker engine is reachable ({_short(exc)})", hint=START_ENGINE_HINT) from None
        self._info = EngineInfo(
            server_version=str(version.get("Version", "?")),
            api_version=str(version.get("ApiVersion", "?")),
            os=str(version.get("Os", "?")),
            architecture=str(version.get("Arch", "?")),
        )
        return self._info

    # --- images ---

    def image(self, ref: str) -> ImageInfo | None:
        """The local image ``ref`` (name:tag, name@digest or id), or None when absent."""
        import docker.errors

        try:
            data = self.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            if getattr(exc, "status_code", None) in (400, 404):
                return None
            raise EngineError(f"cannot inspect image {ref!r}: {_short(exc)}") from None
        return _image_info(data)

    def pull(self, ref: str, timeout: int = 120) -> ImageInfo | None:
        """Try to pull ``ref``; None when no registry serves it (air-gapped sites, this machine).

        A separate client with a short timeout: where DNS or a firewall drops
        registry traffic, a pull hangs rather than fails, and replay must fall
        back to its own base image instead of waiting for the build timeout.
        """
        import docker
        import docker.errors

        try:
            puller = docker.APIClient(base_url=self.api.base_url, version=self.api.api_version, timeout=timeout)
            try:
                puller.pull(ref)
            finally:
                puller.close()
        except Exception as exc:  # APIError, ReadTimeout, ConnectionError: all mean "not pullable here"
            self.pull_failures[ref] = _short(exc)
            return None
        return self.image(ref)

    def resolve(self, ref: str, pull: bool = True) -> ImageInfo | None:
        """The image for ``ref``, pulling it when it is not local and ``pull`` is set."""
        found = self.image(ref)
        if found is None and pull:
            found = self.pull(ref)
        return found

    def import_rootfs(self, tar_stream, repository: str, tag: str, changes: Sequence[str] = ()) -> ImageInfo:
        """``docker import``: a root filesystem tar stream becomes a one-layer image."""
        try:
            self.api.import_image_from_stream(tar_stream, repository=repository, tag=tag, changes=list(changes) or None)
        except Exception as exc:
            raise EngineError(f"docker import of {repository}:{tag} failed: {_short(exc)}") from None
        found = self.image(f"{repository}:{tag}")
        if found is None:
            raise EngineError(f"docker import reported success but {repository}:{tag} is missing")
        return found

    def read_file(self, image: str, path: str, max_bytes: int = 16 * 1024 * 1024) -> bytes | None:
        """One file's bytes from an image, without running anything in it; None when absent."""
        import docker.errors

        try:
            container = self.api.create_container(image, command=["/nonexistent"], network_disabled=True)["Id"]
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot open image {image!r}: {_short(exc)}") from None
        try:
            for _ in range(8):  # follow a few symbolic links (/etc/os-release is one)
                try:
                    stream, _stat = self.api.get_archive(container, path)
                except docker.errors.NotFound:
                    return None
                data = b"".join(stream)
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    member = next(iter(tar.getmembers()), None)
                    if member is not None and member.issym():
                        path = os.path.normpath(os.path.join(os.path.dirname(path), member.linkname))
                        continue
                    if member is None or not member.isfile() or member.size > max_bytes:
                        return None
                    handle = tar.extractfile(member)
                    return handle.read() if handle else None
            return None
        finally:
            try:
                self.api.remove_container(container, force=True)
            except Exception:
                pass

    def remove_image(self, ref: str, force: bool = False) -> None:
        import docker.errors

        try:
            self.api.remove_image(ref, force=force)
        except docker.errors.ImageNotFound:
            pass

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        self.api.tag(image_id, repository, tag)

    def save(self, ref: str) -> Iterator[bytes]:
        """``docker save`` as a stream of tar chunks."""
        return self.api.get_image(ref)

    # --- running ---

    def run(
        self,
        image: str,
        command: Sequence[str],
        *,
        files: bytes | None = None,
        files_at: str = "/",
        network: bool = False,
        environment: Mapping[str, str] | None = None,
        timeout: float = 300,
        user: str | None = None,
    ) -> RunResult:
        """Run ``command`` in a fresh container of ``image`` and remove it afterwards.

        ``files`` (a tar) is copied into the container before it starts: unlike
        a bind mount this works with remote engines and rootless setups, and
        it touches only the container's throwaway layer, never the image.
        Networking is off unless asked for.
        """
        import docker.errors

        try:
            created = self.api.create_container(
                image,
                command=list(command),
                environment=dict(environment or {}),
                network_disabled=not network,
                user=user,
                host_config=self.api.create_host_config(network_mode="none" if not network else "host"),
                labels={"org.envlock.role": "verify"},
            )
        except docker.errors.ImageNotFound:
            raise EngineError(
                f"image {image!r} not found", hint="build it first, or check the name with `docker images`"
            ) from None
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot create a container from {image!r}: {_short(exc)}") from None
        container = created["Id"]
        timed_out = False
        try:
            if files is not None:
                self.api.put_archive(container, files_at, files)
            self.api.start(container)
            try:
                status = self.api.wait(container, timeout=timeout)
                exit_code = int(status.get("StatusCode", -1))
            except Exception:  # requests' ReadTimeout
                timed_out = True
                self.api.kill(container)
                exit_code = -1
            stdout = self.api.logs(container, stdout=True, stderr=False)
            stderr = self.api.logs(container, stdout=False, stderr=True)
        except docker.errors.APIError as exc:
            raise EngineError(f"running a container of {image!r} failed: {_short(exc)}") from None
        finally:
            try:
                self.api.remove_container(container, force=True)
            except Exception:
                pass
        return RunResult(exit_code=exit_code, stdout=stdout, stderr=stderr, timed_out=timed_out)

    # --- building ---

    def choose_builder(self, requested: str = "auto") -> BuilderChoice:
        """Pick the builder: BuildKit through a capable CLI when there is one, else the SDK."""
        if requested not in BUILDERS:
            raise EngineError(f"unknown builder {requested!r}", hint="use one of: " + ", ".join(BUILDERS))
        if requested == "sdk":
            return BuilderChoice(
                "sdk", None, "asked for with --builder sdk (legacy builder: no build secrets, no cache mounts)"
            )
        cli = find_buildkit_cli()
        if cli is not None:
            how = "DOCKER_BUILDKIT=1" if cli.mode == "builtin" else "buildx"
            return BuilderChoice(
                "buildkit",
                cli,
                f"BuildKit through {cli.path} (client {cli.client_version}, {how}): build secrets keep "
                "--ca-cert out of every layer, and the Python and OS stages build in parallel",
            )
        if requested == "buildkit":
            raise EngineError(
                "--builder buildkit: no docker CLI that can build with BuildKit was found",
                hint="install Debian's docker.io (20.10 CLI, BuildKit built in) or the docker-buildx plugin; "
                "or use --builder sdk",
            )
        return BuilderChoice(
            "sdk",
            None,
            "no BuildKit-capable docker CLI found (a 23+ CLI needs the buildx plugin); using the SDK's legacy builder",
        )

    def build(self, request: BuildRequest, choice: BuilderChoice, progress: Progress | None = None) -> BuildResult:
        progress = progress or Progress()
        check_build_request(request)
        self.ping()
        started = time.monotonic()
        if choice.builder == "buildkit":
            assert choice.cli is not None
            image_id = self._build_buildkit(request, choice.cli, progress)
        else:
            if request.secrets:
                raise EngineError(
                    "the SDK's legacy builder cannot pass build secrets",
                    hint="render the build context for the legacy builder (it keeps the CA in a stage that is not shipped)",
                )
            image_id = self._build_sdk(request, progress)
        progress.close()
        return BuildResult(
            image_id=image_id,
            tag=request.tag,
            builder=choice.builder,
            seconds=time.monotonic() - started,
            log=tuple(progress.lines),
        )

    def _build_sdk(self, request: BuildRequest, progress: Progress) -> str:
        import docker.errors

        context = context_tar(request.files)
        image_id = None
        error = None
        try:
            stream = self.api.build(
                fileobj=io.BytesIO(context),
                custom_context=True,
                dockerfile=request.dockerfile,
                tag=request.tag,
                rm=True,
                forcerm=True,
                pull=False,
                nocache=request.no_cache,
                network_mode=request.network,
                labels=dict(request.labels) or None,
                decode=True,
            )
            for chunk in stream:
                if "stream" in chunk:
                    for text in str(chunk["stream"]).splitlines():
                        progress.line(text)
                        found = re.match(r"Successfully built ([0-9a-f]{12,64})", text)
                        if found and image_id is None:
                            image_id = found.group(1)
                elif "status" in chunk:
                    progress.line(" ".join(str(chunk.get(k, "")) for k in ("status", "progress")).strip())
                elif "error" in chunk:
                    error = str(chunk.get("error") or chunk.get("errorDetail", {}).get("message", "build failed"))
                    progress.line(error)
                elif "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
        except docker.errors.APIError as exc:
            error = _short(exc)
        except Exception as exc:  # connection dropped mid-build
            error = f"{type(exc).__name__}: {_short(exc)}"
        if error or not image_id:
            progress.close()
            raise _build_failed(error or "the engine reported no image", progress)
        built = self.image(image_id)
        if built is None:
            raise _build_failed(f"built image {image_id} is missing", progress)
        return built.id

    def _build_buildkit(self, request: BuildRequest, cli: BuildkitCli, progress: Progress) -> str:
        with tempfile.TemporaryDirectory(prefix="envlock-build-") as tmp:
            context_dir = Path(tmp) / "context"
            context_dir.mkdir()
            write_context_dir(request.files, context_dir)
            iidfile = Path(tmp) / "iid"
            argv = [cli.path]
            argv += ["buildx", "build", "--load"] if cli.mode == "buildx" else ["build"]
            argv += ["--progress=plain", "--iidfile", str(iidfile), "-f", str(context_dir / request.dockerfile)]
            # option=value forms: a value can never be read as another option.
            if request.tag:
                argv.append(f"--tag={request.tag}")
            if request.network:
                argv.append(f"--network={request.network}")
            if request.no_cache:
                argv += ["--no-cache"]
            for key, value in sorted(request.labels.items()):
                argv.append(f"--label={key}={value}")
            for secret_id, source in sorted(request.secrets.items()):
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", secret_id):
                    raise EngineError(f"invalid build secret id {secret_id!r}")
                argv.append(f"--secret=id={secret_id},src={os.path.abspath(source)}")
            argv.append(str(context_dir))
            env = dict(os.environ)
            env["DOCKER_BUILDKIT"] = "1"
            # The CLI must not pick up a different context than the SDK did.
            env.pop("DOCKER_CONTEXT", None)
            rc = run_streaming(argv, env, progress, timeout=self._timeout * 6)
            if rc != 0:
                progress.close()
                raise _build_failed(f"{Path(cli.path).name} build exited with status {rc}", progress)
            image_id = iidfile.read_text().strip() if iidfile.exists() else ""
        if not image_id:
            raise _build_failed("the BuildKit build wrote no image id", progress)
        return image_id


_NETWORK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_build_request(request: BuildRequest) -> None:
    """Refuse a tag or network that is not a plain name (they reach a CLI's argv)."""
    from envlock.replay.base_matrix import check_image_ref

    if request.tag is not None:
        try:
            check_image_ref(request.tag, "--tag")
        except EnvlockError as exc:
            raise EngineError(exc.message, exc.hint) from None
    if request.network is not None and not _NETWORK.fullmatch(request.network):
        raise EngineError(
            f"--network {request.network[:60]!r} is not a network name",
            hint="use host, bridge, none or a network's name",
        )


def _image_info(data: Mapping) -> ImageInfo:
    config = data.get("Config") or {}
    return ImageInfo(
        id=str(data.get("Id", "")),
        tags=tuple(data.get("RepoTags") or ()),
        repo_digests=tuple(data.get("RepoDigests") or ()),
        size=int(data.get("Size") or 0),
        labels=dict(config.get("Labels") or {}),
        created=str(data.get("Created", "")),
        architecture=data.get("Architecture"),
    )


def _build_failed(reason: str, progress: Progress) -> EngineError:
    tail = "\n".join("  " + line for line in progress.tail(30))
    message = f"image build failed: {reason}"
    if tail:
        message += "\nlast lines of the build:\n" + tail
    return EngineError(
        message, hint="the lines above come from the build; rerun with ENVLOCK_DEBUG=1 for the full command"
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def engine_available() -> bool:
    """True when an engine answers (used to skip or choose paths, never to fail)."""
    try:
        DockerEngine(timeout=10).ping()
        return True
    except EngineError:
        return False

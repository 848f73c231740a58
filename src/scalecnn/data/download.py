"""Download STIR files from Zenodo (record 6578038) and verify hand-placed copies.

The record's file list (name, size, ``md5:`` checksum, download link) comes
from the Zenodo REST API ``{api}/records/6578038``. The API base is, in order:
the ``api`` argument, the environment variable ``SCALECNN_ZENODO_API``, or
``https://zenodo.org/api``. (pooch's own Zenodo support, ``pooch.DOIDownloader``,
always asks doi.org and zenodo.org: it could use neither another API base nor a
local test server.)

A file is fetched with :func:`pooch.retrieve` through :class:`pooch.HTTPDownloader`:
pooch streams it into a temporary file, checks its md5 against the record's
(``known_hash="md5:..."``) and only then moves it on. Here its size is checked as it
arrives, its STIR format after pooch's check, and it is renamed onto ``{name}.npz``
only after every check passed, so a failed or interrupted download never leaves a
file at the final path.

A failure the user can act on (no network, HTTP 404, a wrong md5, retries used up)
raises :class:`DownloadError` with one message that says what to do (among others:
place the file by hand), not chained to the HTTP library's errors: the command line
and the workflow print that message alone, tracebacks are for bugs. Each retry logs
one short line.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar

import pooch
import requests

from scalecnn.atomic import atomic_path
from scalecnn.data.stir_format import STIRFormatError, validate_stir_file
from scalecnn.study import DATASETS

log = logging.getLogger(__name__)

ZENODO_RECORD_ID = "6578038"
ZENODO_DOI = "10.5281/zenodo.6578038"
RECORD_URL = f"https://zenodo.org/records/{ZENODO_RECORD_ID}"
DEFAULT_API = "https://zenodo.org/api"
API_ENV_VAR = "SCALECNN_ZENODO_API"

_T = TypeVar("_T")


class DownloadError(RuntimeError):
    """A STIR file could not be downloaded or verified."""


class ChecksumError(DownloadError):
    """A file's md5 differs from the one published on Zenodo."""


class RemoteFile(NamedTuple):
    """One file of the Zenodo record."""

    name: str
    size: int | None
    md5: str | None
    url: str


class _RetryableError(Exception):
    """A transient failure worth another attempt (5xx, truncated body)."""


def zenodo_api(api: str | None = None) -> str:
    """The API base: ``api`` > ``$SCALECNN_ZENODO_API`` > ``https://zenodo.org/api``."""
    base = api or os.environ.get(API_ENV_VAR) or DEFAULT_API
    return base.rstrip("/")


def md5sum(path: str | os.PathLike) -> str:
    """Hex md5 of a file (:func:`pooch.file_hash`)."""
    return pooch.file_hash(str(path), alg="md5")


def _manual_hint(name: str) -> str:
    return (
        f"To install it by hand, download {name}.npz from {RECORD_URL} "
        f"(DOI {ZENODO_DOI}) on a machine with network access and put it into the data "
        "folder as "
        f"'{name}.npz'; the workflow then verifies it (format, and md5 when known)."
    )


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown STIR dataset {name!r}; expected one of {sorted(DATASETS)}")


def _target(name: str, dest: str | os.PathLike) -> Path:
    dest = Path(dest)
    return dest if dest.suffix == ".npz" else dest / f"{name}.npz"


# urllib3's prefix naming its connection object: "<...HTTPSConnection object at 0x...>: "
# (urllib3 < 2.3) or "HTTPSConnection(host='zenodo.org', port=443): " (newer)
_CONNECTION_PREFIX = re.compile(r"(<[^<>]* object at 0x[0-9a-fA-F]+>|\w+\(host=[^()]*\)):\s*")


def _reason(exc: BaseException) -> str:
    """A network error in one short line: its innermost cause, without urllib3's wrappers.

    Why: requests reports a failed name lookup as ``HTTPSConnectionPool(...): Max retries
    exceeded ... (Caused by NameResolutionError("<urllib3.connection.HTTPSConnection
    object at 0x...>: Failed to resolve 'zenodo.org' (...)"))``; this gives
    ``Failed to resolve 'zenodo.org' (...)``.
    """
    while exc.args and isinstance(exc.args[0], BaseException):  # requests wraps urllib3's
        exc = exc.args[0]
    reason = getattr(exc, "reason", None)  # urllib3's MaxRetryError: the last attempt's error
    if isinstance(reason, BaseException):
        exc = reason
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return _CONNECTION_PREFIX.sub("", text).strip() or type(exc).__name__


def _with_retries(
    action: Callable[[], _T], url: str, name: str, retries: int, backoff: float
) -> _T:
    """Run ``action``; retry connection errors, timeouts, 5xx and truncation.

    ``retries`` extra attempts follow the first, waiting ``backoff * 2**k``
    seconds before attempt ``k + 2``; each logs one line. When all fail,
    :class:`DownloadError` (not chained: its message says it all) names the URL,
    the last error and how to place the file by hand.
    """
    attempts = max(0, int(retries)) + 1
    last: BaseException | None = None
    for attempt in range(attempts):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            log.warning(
                "%s: %s; retry %d/%d in %.3g s", url, _reason(last), attempt, attempts - 1, delay
            )
            time.sleep(delay)
        try:
            return action()
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            _RetryableError,
        ) as exc:
            last = exc
    assert last is not None
    if isinstance(last, (requests.ConnectionError, requests.Timeout)):
        raise DownloadError(
            f"cannot reach {url} after {attempts} attempt(s) (no network?): {_reason(last)}. "
            + _manual_hint(name)
        ) from None
    raise DownloadError(
        f"{url} failed after {attempts} attempt(s): {_reason(last)}. " + _manual_hint(name)
    ) from None


def _raise_for_status(response: requests.Response, url: str, name: str) -> None:
    status = response.status_code
    if status == 404:
        raise DownloadError(f"not found (HTTP 404): {url}. " + _manual_hint(name))
    if status >= 500:
        raise _RetryableError(f"HTTP {status} from {url}")
    if status >= 400:
        raise DownloadError(f"HTTP {status} from {url}: {response.reason}. " + _manual_hint(name))


def _parse_files(record: Any, api: str) -> dict[str, RemoteFile]:
    """File entries of a Zenodo record JSON (legacy and InvenioRDM shapes)."""
    files: Any = record.get("files") if isinstance(record, dict) else None
    if isinstance(files, dict):
        files = files.get("entries", files)
    if isinstance(files, dict):
        files = list(files.values())
    out: dict[str, RemoteFile] = {}
    for entry in files or []:
        if not isinstance(entry, dict):
            continue
        key = entry.get("key") or entry.get("filename")
        if not key:
            continue
        links = entry.get("links") or {}
        url = (
            links.get("content")
            or links.get("download")
            or links.get("self")
            or f"{api}/records/{ZENODO_RECORD_ID}/files/{key}/content"
        )
        checksum = entry.get("checksum") or ""
        md5 = checksum.split(":", 1)[1].lower() if checksum.startswith("md5:") else None
        size = entry.get("size", entry.get("filesize"))
        out[key] = RemoteFile(key, int(size) if size is not None else None, md5, url)
    return out


def fetch_record_files(
    api: str | None = None,
    retries: int = 3,
    timeout: float = 60,
    *,
    backoff: float = 1.0,
    name: str = "emoji",
) -> dict[str, RemoteFile]:
    """The files of Zenodo record 6578038: file name -> :class:`RemoteFile`."""
    base = zenodo_api(api)
    url = f"{base}/records/{ZENODO_RECORD_ID}"

    def action() -> Any:
        with requests.get(url, timeout=timeout, headers={"Accept": "application/json"}) as r:
            _raise_for_status(r, url, name)
            try:
                return r.json()
            except ValueError as exc:
                raise DownloadError(f"{url} did not return JSON: {exc}") from None

    files = _parse_files(_with_retries(action, url, name, retries, backoff), base)
    if not files:
        raise DownloadError(f"{url}: the record lists no files. " + _manual_hint(name))
    return files


class _Sink:
    """The file object that pooch's HTTPDownloader writes into: counts and hashes the bytes
    and logs progress every 10 %.

    Why: pooch's progress bar is a terminal bar (tqdm), not lines for a log file; the count
    tells a short body from a corrupt one, and the md5 goes into a checksum error's message.
    """

    def __init__(self, fh: IO[bytes], url: str, total: int | None) -> None:
        self.fh, self.url, self.total = fh, url, total
        self.written = 0
        self.md5 = hashlib.md5()
        self._next_pct = 10

    def write(self, chunk: bytes) -> int:
        """Write ``chunk`` to the file, count and hash it, log progress."""
        n = self.fh.write(chunk)
        self.md5.update(chunk)
        self.written += len(chunk)
        if self.total:
            pct = 100 * self.written // self.total
            if pct >= self._next_pct:
                log.info("%s: %d%% (%d of %d bytes)", self.url, pct, self.written, self.total)
                self._next_pct = (pct // 10 + 1) * 10
        return n

    def flush(self) -> None:
        """Flush the file."""
        self.fh.flush()


class _RecordFileDownloader:
    """A pooch downloader for one file of the record: :class:`pooch.HTTPDownloader` (no
    progress bar) writing through a :class:`_Sink`, then the size check.

    Why: pooch checks the md5 only. An HTTP error becomes :class:`DownloadError` (404) or a
    retry (5xx), and a body shorter than the record's size a retry, not a checksum error.
    """

    def __init__(self, remote: RemoteFile, name: str, timeout: float, chunk_size: int) -> None:
        self.remote, self.name = remote, name
        self.http = pooch.HTTPDownloader(progressbar=False, chunk_size=chunk_size, timeout=timeout)
        self.md5: str | None = None

    def __call__(self, url: str, output_file: str, pup: pooch.Pooch | None) -> None:
        """Download ``url`` into ``output_file`` (pooch's temporary file)."""
        with open(output_file, "wb") as fh:
            sink = _Sink(fh, url, self.remote.size)
            try:
                self.http(url, sink, pup)
            except requests.HTTPError as exc:
                _raise_for_status(exc.response, url, self.name)
                raise
        self.md5 = sink.md5.hexdigest()
        expected = self.remote.size
        if expected is not None and sink.written != expected:
            raise _RetryableError(f"truncated download: got {sink.written} of {expected} bytes")


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's own INFO lines: its logger writes to stderr past this process's
    logging set-up (and the log file), and ``download_dataset`` logs the same."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _retrieve(remote: RemoteFile, tmp: Path, name: str, timeout: float, chunk_size: int) -> str:
    """Download ``remote`` to ``tmp`` with :func:`pooch.retrieve` (which checks the md5 when
    the record lists one); return the file's md5."""
    downloader = _RecordFileDownloader(remote, name, timeout, chunk_size)
    tmp.unlink(missing_ok=True)  # pooch moves the checked file here; it keeps an existing one
    try:
        with _quiet_pooch():
            pooch.retrieve(
                remote.url,
                known_hash=f"md5:{remote.md5}" if remote.md5 is not None else None,
                fname=tmp.name,
                path=tmp.parent,
                downloader=downloader,
            )
    except ValueError as exc:
        if isinstance(exc, requests.RequestException) or downloader.md5 is None:
            raise  # an invalid URL (requests' errors are ValueErrors too), not pooch's check
        raise ChecksumError(
            f"md5 mismatch for {name}.npz from {remote.url}: expected {remote.md5}, "
            f"got {downloader.md5}. " + _manual_hint(name)
        ) from None
    assert downloader.md5 is not None
    return downloader.md5


def download_dataset(
    name: str,
    dest: str | os.PathLike,
    api: str | None = None,
    retries: int = 3,
    timeout: float = 60,
    *,
    backoff: float = 1.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``{name}.npz`` of Zenodo record 6578038 into folder ``dest``.

    ``name`` is one of :data:`scalecnn.study.DATASET_NAMES`; ``dest`` is a folder
    (or the target ``.npz`` path). ``api`` overrides the API base (see
    :func:`zenodo_api`). ``retries`` extra attempts follow a failed one on
    connection errors, timeouts, HTTP 5xx and truncated bodies, with
    exponential back-off ``backoff * 2**k`` seconds; ``timeout`` is the
    per-request timeout in seconds.

    The file is fetched by :func:`pooch.retrieve` under a temporary name,
    checked (size as it arrives, md5 by pooch, then :func:`validate_stir_file`)
    and renamed onto the final path only if every check passes. An existing
    file whose md5 matches the record is kept without downloading. Returns the
    final path.

    Raises :class:`DownloadError` (404 naming the URL, no network with the
    manual-placement instructions, exhausted retries), :class:`ChecksumError`
    (naming expected and actual md5), ``STIRFormatError`` or, on a full disk,
    :class:`scalecnn.atomic.DiskFullError`.
    """
    _check_name(name)
    target = _target(name, dest)
    files = fetch_record_files(api, retries, timeout, backoff=backoff, name=name)
    filename = f"{name}.npz"
    if filename not in files:
        raise DownloadError(
            f"record {ZENODO_RECORD_ID} at {zenodo_api(api)} has no file {filename!r}; "
            f"it lists {sorted(files)}"
        )
    remote = files[filename]
    if remote.md5 is None:
        log.warning("record lists no md5 for %s; only size and format are checked", filename)

    if target.is_file() and remote.md5 is not None and md5sum(target) == remote.md5:
        log.info("%s already present with the published md5 %s", target, remote.md5)
        return target

    log.info("downloading %s (%s bytes) from %s", filename, remote.size, remote.url)
    with atomic_path(target) as tmp:
        actual_md5 = _with_retries(
            lambda: _retrieve(remote, tmp, name, timeout, chunk_size),
            remote.url,
            name,
            retries,
            backoff,
        )
        try:
            validate_stir_file(tmp)
        except STIRFormatError as exc:
            raise STIRFormatError(
                f"{filename} downloaded from {remote.url} is not a valid STIR file: {exc}"
            ) from None
    log.info("saved %s (md5 %s)", target, actual_md5)
    return target


def verify_local_file(
    path: str | os.PathLike,
    name: str,
    api: str | None = None,
    expected_md5: str | None = None,
    *,
    timeout: float = 30,
    strict: bool = False,
) -> Path:
    """Verify a hand-placed STIR file and return its path.

    Always checks the format (:func:`validate_stir_file`; without a known md5
    every array is also decompressed once to check the zip CRCs). The md5 is
    checked when known: ``expected_md5``, or else, when ``api`` is given or
    ``$SCALECNN_ZENODO_API`` is set, the one listed by the Zenodo record (if
    the record cannot be reached, a warning is logged and only the format is
    checked). Without either no network is used. If the layout differs from
    ``DATASETS[name]`` a warning is logged, or with ``strict=True``
    ``STIRFormatError`` is raised (synthetic test files have other layouts).

    Note: a regenerated ``emoji.npz`` (:func:`scalecnn.data.generate_emoji`)
    has the published format but not its md5.
    """
    _check_name(name)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"STIR file not found: {path}. " + _manual_hint(name))
    if expected_md5 is None and (api is not None or os.environ.get(API_ENV_VAR)):
        try:
            remote = fetch_record_files(api, retries=1, timeout=timeout, backoff=0.5, name=name)
            entry = remote.get(f"{name}.npz")
            expected_md5 = entry.md5 if entry is not None else None
        except DownloadError as exc:
            log.warning("could not look up the published md5 (%s); checking format only", exc)
    info = validate_stir_file(path, deep=expected_md5 is None)
    wanted = DATASETS[name]
    if info != wanted:
        msg = f"{path}: layout {info} differs from the published {name} layout {wanted}"
        if strict:
            raise STIRFormatError(msg)
        log.warning(msg)
    if expected_md5 is not None:
        actual = md5sum(path)
        if actual != expected_md5.lower():
            raise ChecksumError(
                f"md5 mismatch for {path}: expected {expected_md5.lower()}, got {actual}. "
                + _manual_hint(name)
            )
    return path

"""Download STIR files from Zenodo (record 6578038) and verify hand-placed copies.

The record's file list (name, size, ``md5:`` checksum, download link) comes
from the Zenodo REST API ``{api}/records/6578038``. The API base is, in order:
the ``api`` argument, the environment variable ``SCALECNN_ZENODO_API``, or
``https://zenodo.org/api``.

A download goes to a temporary name in the destination folder and is renamed
onto ``{name}.npz`` only after its size, md5 and STIR format are checked, so a
failed or interrupted download never leaves a file at the final path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

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


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex md5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


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


def _with_retries(
    action: Callable[[], _T], url: str, name: str, retries: int, backoff: float
) -> _T:
    """Run ``action``; retry connection errors, timeouts, 5xx and truncation.

    ``retries`` extra attempts follow the first, waiting ``backoff * 2**k``
    seconds before attempt ``k + 2``.
    """
    attempts = max(0, int(retries)) + 1
    last: BaseException | None = None
    for attempt in range(attempts):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            log.warning(
                "%s failed (%s); retry %d/%d in %.3g s", url, last, attempt, attempts - 1, delay
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
    if isinstance(last, (requests.ConnectionError, requests.Timeout)):
        raise DownloadError(
            f"cannot reach {url} after {attempts} attempt(s) (no network?): {last}. "
            + _manual_hint(name)
        ) from last
    raise DownloadError(f"{url} failed after {attempts} attempt(s): {last}. " + _manual_hint(name))


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
                raise DownloadError(f"{url} did not return JSON: {exc}") from exc

    files = _parse_files(_with_retries(action, url, name, retries, backoff), base)
    if not files:
        raise DownloadError(f"{url}: the record lists no files. " + _manual_hint(name))
    return files


def _stream_to(
    url: str, tmp: Path, expected_size: int | None, timeout: float, chunk_size: int, name: str
) -> str:
    """Download ``url`` into ``tmp`` (overwriting it); return the hex md5.

    Raises ``_RetryableError`` on 5xx or a body shorter/longer than expected.
    """
    digest = hashlib.md5()
    written = 0
    with requests.get(url, stream=True, timeout=timeout) as r:
        _raise_for_status(r, url, name)
        header = r.headers.get("Content-Length")
        total = expected_size or (int(header) if header and header.isdigit() else None)
        next_pct = 10
        with open(tmp, "wb") as fh:
            for chunk in r.iter_content(chunk_size=chunk_size):
                fh.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                if total:
                    pct = 100 * written // total
                    if pct >= next_pct:
                        log.info("%s: %d%% (%d of %d bytes)", url, pct, written, total)
                        next_pct = (pct // 10 + 1) * 10
    if expected_size is not None and written != expected_size:
        raise _RetryableError(f"truncated download: got {written} of {expected_size} bytes")
    return digest.hexdigest()


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

    The file is written under a temporary name, checked (size and md5 from
    the record, then :func:`validate_stir_file`) and renamed onto the final
    path only if every check passes. An existing file whose md5 matches the
    record is kept without downloading. Returns the final path.

    Raises :class:`DownloadError` (404 naming the URL, no network with the
    manual-placement instructions, exhausted retries), :class:`ChecksumError`
    (naming expected and actual md5) or ``STIRFormatError``.
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
            lambda: _stream_to(remote.url, tmp, remote.size, timeout, chunk_size, name),
            remote.url,
            name,
            retries,
            backoff,
        )
        if remote.md5 is not None and actual_md5 != remote.md5:
            raise ChecksumError(
                f"md5 mismatch for {filename} from {remote.url}: expected {remote.md5}, "
                f"got {actual_md5}. " + _manual_hint(name)
            )
        try:
            validate_stir_file(tmp)
        except STIRFormatError as exc:
            raise STIRFormatError(
                f"{filename} downloaded from {remote.url} is not a valid STIR file: {exc}"
            ) from exc
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

"""HTTP serving of the classifier, speaking MLflow's scoring protocol plus multipart image upload.

Endpoints as in ``mlflow models serve``: GET /ping and /health, GET /version, POST /invocations with JSON
(``dataframe_split``, ``dataframe_records``, ``inputs`` or ``instances``; images as base64 strings in column
``image``) answering ``{"predictions": [{"class": ..., "prob_<Class>": ...}, ...]}``. POST /invocations and
/predict also take ``multipart/form-data`` with one or more ``file`` fields. A request over the byte or image
count limit gets 413, an image that does not decode (or is over the pixel limit) 422, a malformed request 400;
all with a one-line reason, and the server keeps serving. Binds to 127.0.0.1 unless told otherwise.

Every prediction carries the OOD guard's ``ood_score``, ``in_distribution`` and ``ood_reason`` (empty, and said
once at startup, for a model registered without a guard). With ``refuse_ood`` a flagged image is refused: its
entry in ``predictions`` holds ``status`` 422, ``error_code`` ``OUT_OF_DISTRIBUTION`` and the reason instead of a
class, while the request's other images are answered (``status`` 200); a request whose images are all refused is
answered 422 as a whole, with the same per-image entries.
"""

# No `from __future__ import annotations` here: FastAPI reads the handlers' annotations (``request: Request``)
# at runtime, and Request is imported inside create_app.
import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from mritune.deploy.ood_guard import IN_DISTRIBUTION, NO_GUARD_MESSAGE, OOD_REASON, OOD_SCORE
from mritune.deploy.pyfunc_classifier import ClassifierPredictor, decode_base64
from mritune.trainables.data.preprocess import ImageDecodeError
from mritune.trainables.errors import UserInputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5001
JSON_FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")
OUT_OF_DISTRIBUTION = "OUT_OF_DISTRIBUTION"


@dataclass(frozen=True)
class ServeLimits:
    """Per-request limits; the pixel limit is decode_image's MAX_PIXELS."""

    max_request_bytes: int = 10 * 1024 * 1024
    max_images: int = 256


class RequestRejected(Exception):
    """A request the server refuses, with the HTTP status and a one-line reason for the client."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


def create_app(*, predictor: ClassifierPredictor, description: dict, limits: ServeLimits | None = None,
               refuse_ood: bool = False):
    """The FastAPI application serving one loaded classifier; ``refuse_ood`` refuses the images the guard flags."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    limits = limits or ServeLimits()
    # One inference at a time: on a few cores parallel Keras calls only contend, and this keeps memory bounded.
    inference_lock = threading.Lock()
    app = FastAPI(title="mritune classifier", docs_url=None, redoc_url=None)

    async def ping():
        return JSONResponse({"status": "ok"})

    async def version():
        guard = {"ood_guard": predictor.guard is not None, "refuse_ood": refuse_ood}
        return JSONResponse({**_version_info(description), **guard})

    async def invocations(request: Request):
        try:
            body = await read_body(request, limits.max_request_bytes)
            named = await extract_images(request.headers.get("content-type", ""), request.headers, body, limits)
            records = await asyncio.to_thread(_predict_locked, predictor, named, inference_lock)
        except RequestRejected as exc:
            return JSONResponse({"error_code": exc.code, "message": exc.reason}, status_code=exc.status)
        if not refuse_ood:
            return JSONResponse({"predictions": records})
        records = [refused(r) if r[IN_DISTRIBUTION] is False else {**r, "status": 200} for r in records]
        refusals = [r for r in records if r["status"] == 422]
        if len(refusals) < len(records):
            return JSONResponse({"predictions": records})
        message = (refusals[0]["message"] if len(refusals) == 1
                   else f"all {len(refusals)} images are out of distribution")
        return JSONResponse({"error_code": OUT_OF_DISTRIBUTION, "message": message, "predictions": records},
                            status_code=422)

    app.get("/ping")(ping)
    app.get("/health")(ping)
    app.get("/version")(version)
    app.post("/invocations")(invocations)
    app.post("/predict")(invocations)
    return app


async def read_body(request: Any, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``max_bytes`` (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestRejected(413, "PAYLOAD_TOO_LARGE", f"request of {declared} bytes is over the limit of {max_bytes}")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise RequestRejected(413, "PAYLOAD_TOO_LARGE", f"request is over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def extract_images(content_type: str, headers: Any, body: bytes, limits: ServeLimits) -> list[tuple[str, Any]]:
    """(name, bytes-or-array) per image from a JSON or multipart body."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        images = images_from_json(body)
    elif mime == "multipart/form-data":
        images = await images_from_multipart(headers, body)
    else:
        raise RequestRejected(
            415, "UNSUPPORTED_CONTENT_TYPE",
            f"content type {mime or 'none'!r} is not supported; send application/json or multipart/form-data",
        )
    if not images:
        raise RequestRejected(400, "BAD_REQUEST", "the request holds no images")
    if len(images) > limits.max_images:
        raise RequestRejected(413, "TOO_MANY_IMAGES", f"{len(images)} images is over the limit of {limits.max_images}")
    return images


def images_from_json(body: bytes) -> list[tuple[str, Any]]:
    """Images from MLflow's JSON formats; each value is base64 text (or a nested list of pixel values)."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestRejected(400, "BAD_REQUEST", f"the body is not valid JSON ({exc})") from None
    keys = [key for key in JSON_FORMATS if isinstance(payload, dict) and key in payload]
    if len(keys) != 1:
        expected = ", ".join(JSON_FORMATS)
        raise RequestRejected(400, "BAD_REQUEST", f"the JSON body needs exactly one of the keys {expected}")
    values = _image_column(keys[0], payload[keys[0]])
    return [(f"image {i}", _image_value(i, value)) for i, value in enumerate(values)]


def _image_column(key: str, data: Any) -> list:
    if key == "dataframe_split":
        columns, rows = (data or {}).get("columns"), (data or {}).get("data")
        if not isinstance(columns, list) or "image" not in columns or not isinstance(rows, list):
            raise RequestRejected(400, "BAD_REQUEST", "dataframe_split needs 'columns' with 'image' and 'data'")
        position = columns.index("image")
        return [row[position] for row in rows if isinstance(row, list) and len(row) > position]
    if isinstance(data, dict) and isinstance(data.get("image"), list):
        return data["image"]
    if isinstance(data, list):
        return [row["image"] if isinstance(row, dict) and "image" in row else row for row in data]
    raise RequestRejected(400, "BAD_REQUEST", f"{key} must be a list of records with 'image' or {{'image': [...]}}")


def _image_value(index: int, value: Any):
    if isinstance(value, str):
        try:
            return decode_base64(value, index=index)
        except ImageDecodeError as exc:
            raise RequestRejected(422, "INVALID_IMAGE", str(exc)) from None
    if isinstance(value, list):
        try:
            return np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError):
            raise RequestRejected(422, "INVALID_IMAGE", f"image {index}: a ragged list is not an image") from None
    raise RequestRejected(422, "INVALID_IMAGE", f"image {index}: expected base64 text, got {type(value).__name__}")


async def images_from_multipart(headers: Any, body: bytes) -> list[tuple[str, bytes]]:
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream():
        yield body
        yield b""

    try:
        form = await MultiPartParser(headers, stream()).parse()
    except (MultiPartException, KeyError, ValueError) as exc:
        reason = getattr(exc, "message", exc)
        raise RequestRejected(400, "BAD_REQUEST", f"malformed multipart body ({reason})") from None
    uploads = [item for item in form.getlist("file") if isinstance(item, UploadFile)]
    if not uploads:
        raise RequestRejected(400, "BAD_REQUEST", "a multipart upload needs one or more file fields named 'file'")
    return [(upload.filename or f"image {i}", await upload.read()) for i, upload in enumerate(uploads)]


def refused(record: dict) -> dict:
    """A flagged image's entry under ``--refuse-ood``: no class, the guard's verdict and why, status 422."""
    reason = f"{record['name']}: not what the model was trained on (ood_score {record[OOD_SCORE]:.3g} > 1): " \
             f"{record[OOD_REASON]}"
    kept = {key: record[key] for key in ("name", OOD_SCORE, IN_DISTRIBUTION, OOD_REASON)}
    return {**kept, "status": 422, "error_code": OUT_OF_DISTRIBUTION, "message": reason}


def _predict_locked(predictor: ClassifierPredictor, named: list[tuple[str, Any]], lock: threading.Lock) -> list[dict]:
    arrays, colours = [], []
    for name, source in named:
        try:
            image, colour = predictor.decode_checked(source)
        except ImageDecodeError as exc:
            raise RequestRejected(422, "INVALID_IMAGE", f"{name}: {exc}") from None
        arrays.append(image)
        colours.append(colour)
    with lock:
        probs, verdicts = predictor.predict_guarded(np.stack(arrays), np.array(colours))
    records = predictor.records(probs, verdicts)
    for (name, _), record in zip(named, records):
        record["name"] = name
    return records


def _version_info(description: dict) -> dict:
    from importlib import metadata as importlib_metadata

    versions = {}
    for package in ("mritune", "mlflow"):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = "unknown"
    model = {key: description.get(key) for key in ("name", "version", "aliases", "run_id", "dataset_fingerprint")}
    return {**versions, "model": model}


def run_server(
    *, model: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, tracking_uri: str | None = None,
    limits: ServeLimits | None = None, refuse_ood: bool = False,
) -> None:
    """The `mritune serve` command: load the classifier once, then serve until interrupted.

    Endpoints: ``POST /invocations`` (MLflow's scoring protocol), ``POST /predict`` (files or base64 images),
    ``GET /ping`` and ``GET /version``. There is no authentication: a host other than localhost is warned about.

    Args:
        model: A registry reference (``mritune-classifier@champion``) or a folder written by ``mritune pull``.
        host: The interface to listen on (default 127.0.0.1).
        port: The TCP port (default 5001).
        tracking_uri: The MLflow store; None: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns.db``.
        limits: Per-request limits (bytes, images); None: :class:`ServeLimits` defaults.
        refuse_ood: Refuse (422, with the reason) the images the model's OOD guard flags; the other images of a
            request are still answered.

    Raises:
        ValueError: ``port`` is not a TCP port, the model is not a classifier, or ``refuse_ood`` is asked of a
            model registered without an OOD guard.
        FileNotFoundError: The model or its tracking store cannot be found.
        TrackingServerUnreachable: An http(s) tracking server does not answer.
        UnsafeModelError: The model would need pickle to load.

    Example:
        >>> run_server(model="mritune-classifier@champion", port=5001)  # doctest: +SKIP
    """
    import uvicorn

    from mritune.deploy.registry_client import open_model

    if not 0 < port < 65536:
        raise UserInputError(f"--port {port} is not a TCP port (1..65535)")
    with open_model(model, tracking_uri=tracking_uri) as (folder, description):
        # Refused from the folder's description, before TensorFlow and the model load (seconds).
        if refuse_ood and folder.kind == "classifier" and folder.guard_path is None:
            raise UserInputError(f"--refuse-ood needs a model with an OOD guard, and {model} has none; register "
                                 "it again or serve it without --refuse-ood")
        predictor = ClassifierPredictor.from_folder(folder)
    if predictor.guard is None:
        print(f"note: {NO_GUARD_MESSAGE}", flush=True)
    # Trace the inference graph now, so the first client does not wait for it.
    predictor.predict_guarded(np.zeros((1, predictor.image_size, predictor.image_size), dtype=np.uint8))
    app = create_app(predictor=predictor, description=description, limits=limits, refuse_ood=refuse_ood)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}: reachable from other machines; there is no authentication")
    label = f"{description.get('name', model)} v{description.get('version', '?')}"
    refusing = "; refusing out-of-distribution images" if refuse_ood else ""
    print(f"serving {label} at http://{host}:{port} (POST /invocations, /predict; GET /ping, /version){refusing}",
          flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)

"""File routes: upload (multipart, 413 over the limit), get, list, delete, signed download, delivery."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    Response,
)

from .errors import ApiError, input_validation, not_found
from .files import UPLOAD_TOO_LARGE, FileTooLarge, content_disposition
from .gate import parse_json
from .routes_base import (
    _JSON_UTF8,
    BaseRoutes,
    json_response,
    keyset_page,
)


class FileRoutes(BaseRoutes):
    """File routes: upload (multipart, 413 over the limit), get, list, delete, signed download, delivery."""

    # ------------------------------------------------------------------ files
    async def files_create(self, request: Request) -> Response:
        account = self.account(request)
        core = self.core
        # The input gate caps the whole body (upload limit plus the multipart framing); the
        # file part itself is checked against the limit read here, once.
        limit = core.files.max_upload_size
        too_large = ApiError(413, UPLOAD_TOO_LARGE, title="Content Too Large")
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise input_validation(["- content is required"])
        from starlette.formparsers import MultiPartException, MultiPartParser

        try:
            form = await MultiPartParser(
                request.headers, request.stream(), max_files=10, max_fields=100
            ).parse()
        except MultiPartException as exc:
            raise ApiError(400, f"Invalid multipart body: {exc}") from exc
        try:
            content = form.get("content")
            if content is None or isinstance(content, str):
                if isinstance(content, str):
                    import io

                    data_src: Any = io.BytesIO(content.encode())
                    part_name, part_type = None, None
                else:
                    raise input_validation(["- content is required"])
            else:
                data_src = content.file
                part_name, part_type = content.filename, content.content_type
            filename = form.get("filename")
            filename = filename if isinstance(filename, str) and filename else (part_name or "file")
            if len(filename) > 255:
                raise input_validation(
                    ["- filename: String length must be less than or equal to 255"]
                )
            ftype = form.get("type")
            content_type = (
                ftype
                if isinstance(ftype, str) and ftype
                else (part_type or "application/octet-stream")
            )
            # Control characters (CR, LF, NUL) never reach a stored type or a header.
            content_type = (
                "".join(ch for ch in content_type if ch.isprintable()).strip()
                or "application/octet-stream"
            )
            metadata_raw = form.get("metadata")
            metadata: Any = {}
            if isinstance(metadata_raw, str) and metadata_raw:
                try:  # the input gate's strict JSON, as for request bodies
                    metadata = parse_json(metadata_raw.encode("utf-8", "surrogatepass"))
                except ApiError as exc:
                    raise input_validation(["- metadata: must be a JSON object"]) from exc
                if not isinstance(metadata, dict):
                    raise input_validation(["- metadata: must be a JSON object"])
            try:
                row = await run_in_threadpool(
                    core.files.create_upload,
                    account,
                    data_src,
                    filename,
                    content_type,
                    metadata,
                    limit,
                )
            except FileTooLarge as exc:
                raise too_large from exc
        finally:
            await form.close()
        return json_response(
            core.files.file_json(row, self.origin(request)), 201, media_type=_JSON_UTF8
        )

    async def files_list(self, request: Request) -> Response:
        account = self.account(request)
        origin = self.origin(request)
        rows = self.core.files.list_uploads(account)
        page, nxt, prev = keyset_page(request, origin, rows, self.core.config.page_sizes["files"])
        return json_response(
            {
                "next": nxt,
                "previous": prev,
                "results": [self.core.files.file_json(r, origin) for r in page],
            },
            media_type=_JSON_UTF8,
        )

    async def files_get(self, request: Request) -> Response:
        account = self.account(request)
        row = self.core.files.get_upload(account, request.path_params["file_id"])
        if row is None:
            raise not_found("File not found")
        return json_response(
            self.core.files.file_json(row, self.origin(request)), media_type=_JSON_UTF8
        )

    async def files_delete(self, request: Request) -> Response:
        account = self.account(request)
        if not self.core.files.delete_upload(account, request.path_params["file_id"]):
            raise not_found("File not found")
        return Response(status_code=204)

    async def files_download(self, request: Request) -> Response:
        qp = request.query_params
        fid = request.path_params["file_id"]
        row = self.core.files.verify_download(
            fid, qp.get("owner", ""), qp.get("expiry", ""), qp.get("signature", "")
        )
        if row is None:
            raise not_found("File not found")
        return FileResponse(
            self.core.files.blob_path(row),
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": content_disposition(row["name"]),
                "ETag": f'"{row["md5"]}"',
            },
        )

    async def delivery(self, request: Request) -> Response:
        row = self.core.files.resolve_delivery(
            request.path_params["token"], request.path_params["filename"]
        )
        if row is None:
            raise not_found()
        return FileResponse(
            self.core.files.blob_path(row),
            media_type=row["content_type"],
            headers={"ETag": f'"{row["md5"]}"'},
        )

"""Hardware available for models and deployments: ``client.hardware.list()``."""

from __future__ import annotations

import builtins
import warnings
from typing import TYPE_CHECKING

import httpx

from ._http import Operation, json_of
from .exceptions import APIResponseValidationError
from .resource import Namespace, Resource

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._http import RequestOptions

__all__ = ["Hardware", "HardwareNamespace"]


class Hardware(Resource):
    """A hardware SKU, e.g. ``Hardware(sku="gpu-t4", name="Nvidia T4 GPU")``."""

    sku: str | None = None
    """The SKU, as passed to ``models.create(hardware=...)`` and deployments."""

    name: str | None = None
    """The human-readable name."""

    @property
    def id(self) -> str | None:
        """Deprecated alias of :attr:`sku`."""
        warnings.warn("Use `sku` instead of `id`", DeprecationWarning, stacklevel=2)
        return self.sku


class HardwareNamespace(Namespace):
    """The ``hardware`` namespace.

    Every method also accepts the keyword-only escape hatches ``extra_headers``, ``extra_query``
    and ``extra_body``.
    """

    def list(self, **options: Unpack[RequestOptions]) -> builtins.list[Hardware]:
        """The hardware available for running models (``GET /v1/hardware``; not paginated)."""
        return self._call(self._list().with_options(options))

    async def async_list(self, **options: Unpack[RequestOptions]) -> builtins.list[Hardware]:
        """Async twin of :meth:`list`."""
        return await self._acall(self._list().with_options(options))

    def _list(self) -> Operation[builtins.list[Hardware]]:
        client = self._client

        def parse(response: httpx.Response) -> builtins.list[Hardware]:
            body = json_of(response)
            if not isinstance(body, builtins.list):
                raise APIResponseValidationError(
                    title="Invalid response body",
                    status=response.status_code,
                    detail=f"Expected a JSON array of hardware, got {type(body).__name__}",
                    body=body,
                    response=response,
                    request=response.request,
                )
            return [Hardware._from_api(item, client) for item in body]

        return Operation("GET", "/v1/hardware", parse=parse)

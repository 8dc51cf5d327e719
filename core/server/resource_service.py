"""ResourceService: the trainer publishes the current model; runners read it."""
from __future__ import annotations

import grpc

from agentlightning.core.store import NotFound, Store, StoreError
from agentlightning.v1 import resources_pb2_grpc


class ResourceService(resources_pb2_grpc.ResourceServiceServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    def Publish(self, request, context):
        if not request.endpoint or not request.version:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a model resource needs endpoint and version")
        try:
            return self.store.publish_resource(request)
        except StoreError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))

    def Get(self, request, context):
        try:
            return self.store.get_resource(request.name)
        except NotFound as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))

"""The online service: FastAPI app, request schemas and the model store."""

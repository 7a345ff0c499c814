"""Content-addressed blob storage (layer 1): BLAKE3 digests over fsspec.

``BlobStore`` is the small seam (bytes in, bytes out, by digest). ``FsspecBlobStore``
serves local folders and any fsspec URL; the REST client provides another
implementation that talks to a Shipyard server.
"""

from shipyard.artifacts.blobs import BlobStore, FsspecBlobStore, hash_file, open_blob_store

__all__ = ["BlobStore", "FsspecBlobStore", "hash_file", "open_blob_store"]

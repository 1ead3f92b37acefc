"""What one request may ask of a function, and why; every route checks against these."""

from __future__ import annotations

# Inputs per request. A Lambda answers one request at a time within its timeout (15 s for
# cifar10-cnn); 64 CIFAR images run in well under a second, and a bigger batch is a client bug more
# often than a need. Clients split larger work into several requests.
MAX_BATCH = 64

# Decoded pixels per image (16.8 MP, above a 12 MP phone photo). A tiny PNG can declare a huge
# canvas (a decompression bomb), so the size is checked from the header, before decoding.
MAX_PIXELS = 4096 * 4096

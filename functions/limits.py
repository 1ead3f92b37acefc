"""What one request may ask of a function, and why; every route checks against these."""

from __future__ import annotations

# Inputs per request. A Lambda answers one request at a time within its timeout (15 s for
# cifar10-cnn); 64 CIFAR images run in well under a second, and a bigger batch is a client bug more
# often than a need. Clients split larger work into several requests.
MAX_BATCH = 64

# Decoded pixels per image (16.8 MP, above a 12 MP phone photo). A tiny PNG can declare a huge
# canvas (a decompression bomb), so the size is checked from the header, before decoding.
MAX_PIXELS = 4096 * 4096

# Decoded pixels per request, summed over its inputs, counted from the image headers before any
# image is decoded. Without it 64 images of MAX_PIXELS each pass: a 4.2 MB body of 64 zero-filled
# 4096x4096 PNGs took 15.6 s to preprocess on a 2-core AMD EPYC, past the 15 s Lambda timeout.
# A PNG decodes at ~12 ms per megapixel (one 4096x4096: 0.2 s), so the limit costs ~0.5 s.
# A JPEG counts at the reduced scale it decodes at (`Image.draft`, up to 1/8 per side for a 32x32
# target): a 12 MP photo counts 0.2 MP, and 64 JPEGs of 4096x4096 take 0.4 s.
# The commit that set this limit gives the commands, machine and spread of these figures.
MAX_TOTAL_PIXELS = 2 * MAX_PIXELS  # 32 MP: two images of the largest size

# Text, per input: the request may also not exceed the model's own `max_tokens` (its manifest).
# 32 KiB is more than twice the longest review of the full IMDB set (13.7k characters).
MAX_TEXT_BYTES = 32 * 1024

# Tokens per request, summed over its texts. A language model's logits are 40 kB per token for a
# 10k-word vocabulary; the adapter runs long batches in chunks (MAX_LOGITS_PER_CALL), so this
# bounds time, not memory: 64 texts of 256 tokens is 16,384.
MAX_TOTAL_TOKENS = 65536

# Token positions (batch x time) per onnxruntime call of a language model: 2,048 positions of a
# 10k-word softmax are 82 MB of logits, well inside the smallest sensible function (1 GB).
MAX_LOGITS_PER_CALL = 2048

# Generation: words per text per request, and next-word candidates per text.
MAX_NEW_TOKENS = 200
MAX_TOP_K = 100

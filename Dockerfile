# The container variant of a modelfn function (models.toml `serving.runtime = "torch"`): the zip
# function's handler, routes and task adapters, serving the eager torch model rebuilt from the
# artifact's safetensors weights instead of the ONNX graph. infra/ builds it for every torch entry
# (infra/container_image.py, DockerImageCode.from_image_asset); docs/serving.md shows how to build,
# run and push it by hand. The build context is the repository root; .dockerignore lets in only
# what is copied below.

# cdk.json's modelfn:python-version, passed by infra/ as a build argument (3.12: Amazon Linux 2023,
# glibc 2.34; torch 2.13's manylinux_2_28 wheels do not load on 3.11's Amazon Linux 2).
ARG PYTHON_VERSION=3.12

# --- builder: the third-party packages, into /deps and /torch ---------------------------------
FROM public.ecr.aws/lambda/python:${PYTHON_VERSION} AS builder

# Written from requirements.lock (`python -m infra.container_image`): the versions the tests ran
# on. requirements-torch.txt holds every package but torch with its hashes, so pip refuses any
# other file and any dependency the lock does not pin. torch is pinned by version alone (the lock
# has no hash of its cp312 wheels) and comes from the CPU-only index, never PyPI, whose Linux
# torch wheels pull several GB of CUDA libraries; --no-deps, as its dependencies are in the
# hashed file. Binary wheels only (nothing compiled here); the import check fails the build if a
# CUDA torch slipped in after all.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements-torch.txt requirements-torch-cpu.txt /tmp/
RUN pip install --no-cache-dir --only-binary=:all: --require-hashes --target /deps \
        -r /tmp/requirements-torch.txt \
    && pip install --no-cache-dir --only-binary=:all: --no-deps --target /torch \
        --index-url "${TORCH_INDEX_URL}" -r /tmp/requirements-torch-cpu.txt \
    && PYTHONPATH=/torch:/deps python -c "import torch, sys; sys.exit(torch.version.cuda is not None)"

# --- the function image ------------------------------------------------------------------------
FROM public.ecr.aws/lambda/python:${PYTHON_VERSION}

# ${LAMBDA_TASK_ROOT} (/var/task) heads the runtime's sys.path: packages and code both go there.
COPY --from=builder /deps ${LAMBDA_TASK_ROOT}
COPY --from=builder /torch ${LAMBDA_TASK_ROOT}
# The code: infra.container_image.IMAGE_SOURCES (tests/infra checks these lines against it).
COPY functions ${LAMBDA_TASK_ROOT}/functions
COPY modelfn/__init__.py modelfn/api_routes.py modelfn/artifact.py modelfn/budget.py modelfn/canary.py modelfn/capture.py modelfn/images.py modelfn/input_features.py modelfn/reference_stats.py modelfn/text.py modelfn/tokenizer_file.py ${LAMBDA_TASK_ROOT}/modelfn/
COPY modelfn/store ${LAMBDA_TASK_ROOT}/modelfn/store
COPY architectures ${LAMBDA_TASK_ROOT}/architectures

# Lambda runs the image on a read-only file system, so bytecode is compiled now or on every cold
# start. Unchecked hashes (PEP 552), as in the zip layer: COPY does not promise the timestamps.
RUN python -m compileall -q --invalidation-mode unchecked-hash "${LAMBDA_TASK_ROOT}"

# The image holds torch and no onnxruntime, so it can serve only this runtime; infra/ sets the same.
ENV MODELFN_RUNTIME=torch

# Lambda ignores USER and always runs the image as its own least-privileged user (every file
# above is root-owned and world-readable, which is all that user needs); `nobody` makes a local
# `docker run` under the runtime interface emulator run the same way.
USER 65534:65534

CMD ["functions.handler.handler"]

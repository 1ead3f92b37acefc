# The container variant of a modelfn function (models.toml `serving.runtime = "torch"`): the zip
# function's handler, routes and task adapters, serving the eager torch model rebuilt from the
# artifact's safetensors weights instead of the ONNX graph. infra/ builds it for every torch entry
# (infra/container_image.py, DockerImageCode.from_image_asset); docs/serving.md shows how to build,
# run and push it by hand. The build context is the repository root; .dockerignore lets in only
# what is copied below.

# cdk.json's modelfn:python-version, passed by infra/ as a build argument (3.12: Amazon Linux 2023,
# glibc 2.34; torch 2.13's manylinux_2_28 wheels do not load on 3.11's Amazon Linux 2).
ARG PYTHON_VERSION=3.12

# --- builder: the third-party packages, into /deps -------------------------------------------
FROM public.ecr.aws/lambda/python:${PYTHON_VERSION} AS builder

# PyPI's Linux torch wheels pull several GB of CUDA libraries; this index has the CPU-only build
# of the same version (2.13.0+cpu sorts above 2.13.0, so pip takes it). Everything else is PyPI's.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Written from pyproject.toml (`python -m infra.container_image`): one list of versions.
COPY requirements-torch.txt /tmp/requirements-torch.txt
# Binary wheels only (nothing compiled here); the import check fails the build if a CUDA torch
# slipped in after all.
RUN pip install --no-cache-dir --only-binary=:all: --target /deps \
        --extra-index-url "${TORCH_INDEX_URL}" -r /tmp/requirements-torch.txt \
    && PYTHONPATH=/deps python -c "import torch, sys; sys.exit(torch.version.cuda is not None)"

# --- the function image ------------------------------------------------------------------------
FROM public.ecr.aws/lambda/python:${PYTHON_VERSION}

# ${LAMBDA_TASK_ROOT} (/var/task) heads the runtime's sys.path: packages and code both go there.
COPY --from=builder /deps ${LAMBDA_TASK_ROOT}
# The code: infra.container_image.IMAGE_SOURCES (tests/infra checks these lines against it).
COPY functions ${LAMBDA_TASK_ROOT}/functions
COPY modelfn/__init__.py modelfn/api_routes.py modelfn/artifact.py modelfn/text.py ${LAMBDA_TASK_ROOT}/modelfn/
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

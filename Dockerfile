# mrirecon on a CUDA PyTorch *runtime* image: no compilers, no conda beyond the base python.
#
#   docker build -t mrirecon .
#   docker run --rm --gpus all -v "$PWD/data:/data" mrirecon train \
#       --config /opt/mrirecon/configs/demo.yaml --data-root /data/train --val-root /data/val --out /data/runs/demo
#   docker run --rm --gpus all -v "$PWD/data:/data" mrirecon reconstruct --method unet \
#       --checkpoint /data/runs/demo/best.pt --input /data/test --output /data/recon --device cuda
#
# The image keeps the base image's torch: pip installs mrirecon under a constraint that pins
# the torch already present, so it can never be replaced by a CPU or other CUDA build.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    MRIRECON_CONFIG_DIR=/opt/mrirecon/configs

WORKDIR /opt/mrirecon
COPY pyproject.toml README.md ./
COPY mrirecon ./mrirecon
COPY configs ./configs

# Wheels only for dependencies (h5py, scikit-image, scipy, ... all ship manylinux wheels).
RUN python -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > /tmp/torch.txt \
 && python -m pip install --prefer-binary -c /tmp/torch.txt ".[nifti]" \
 && rm -rf /tmp/torch.txt build mrirecon.egg-info \
 && python -c "import mrirecon, torch; print('mrirecon', mrirecon.__version__, 'torch', torch.__version__)"

RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin mrirecon \
 && mkdir -p /data && chown mrirecon:mrirecon /data
USER mrirecon
WORKDIR /data
VOLUME ["/data"]

ENTRYPOINT ["mrirecon"]
CMD ["--help"]

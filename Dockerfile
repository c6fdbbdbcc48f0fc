# One image for every container of a deployment: the code location (its default command, a
# gRPC code server on port 4000), dagster-webserver, dagster-daemon, and the runs the run
# launcher starts (Docker or Kubernetes; each reuses this image with its own command).
# The image holds the package, definitions.py and the mappings; the settings, the secrets and
# the Dagster instance (dagster.yaml) come from the deployment: README "Deploying", deploy/.
#
# tests/deploy/test_dockerfile_recipe.py runs this file's COPY and `pip install` steps in a
# fresh venv and starts its CMD, so keep each install a `RUN pip install ...` line and the
# paths relative to WORKDIR.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    CONNECTOR_STATE_DIR=/opt/dagster/state

WORKDIR /opt/connector

# The package with the deploy extra (PostgreSQL storage, both run launchers), installed into
# site-packages; the source copy is removed so nothing shadows the installed package.
COPY pyproject.toml README.md ./
COPY connector ./connector
RUN pip install --no-cache-dir '.[deploy]' && rm -rf connector build *.egg-info

# The code location: definitions.py reads mappings/ (CONNECTOR_MAPPINGS_DIR) from this folder.
# The sample exports let the shipped mappings load and run against the sandbox; a deployment
# replaces mappings/ with its own (a rebuilt image, or a volume mounted over it).
COPY definitions.py ./
COPY mappings ./mappings
COPY sample_exports ./sample_exports

# A non-root user (numeric, so Kubernetes' runAsNonRoot can check it) owning only its state
# folder and DAGSTER_HOME; the code and the installed packages stay read-only to it.
RUN useradd --uid 10001 --gid 0 --no-create-home --home-dir /opt/dagster connector \
    && mkdir -p "$DAGSTER_HOME" "$CONNECTOR_STATE_DIR" \
    && chown -R 10001:0 /opt/dagster
USER 10001

EXPOSE 4000
CMD ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", "--python-file", "definitions.py", "--location-name", "profile_sync_connector"]

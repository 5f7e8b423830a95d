# The ioc image: ioc in a virtualenv, Kafka's jars, and Debian's Redis, Mosquitto, PostgreSQL and
# Alertmanager, so one image serves every service of docker-compose.yml (the command picks the process).
# Built FROM a local Debian base made by debootstrap (no registry is needed): `make images`.
ARG BASE_IMAGE=ioc-base:bookworm

# Kafka's runtime classpath from Maven Central, with the pom `ioc infra fetch` uses; Maven stays here.
FROM ${BASE_IMAGE} AS kafka-jars
ARG KAFKA_VERSION=3.9.2
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends maven openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
COPY ioc/infra/kafka-pom.xml /build/pom.xml
RUN mvn -q -B -f /build/pom.xml -Dkafka.version=${KAFKA_VERSION} dependency:copy-dependencies \
        -DoutputDirectory=/opt/kafka/libs \
 && test -f /opt/kafka/libs/kafka_2.13-${KAFKA_VERSION}.jar \
 && rm -rf /root/.m2

# What every process needs from Debian, and the user they run as.
FROM ${BASE_IMAGE} AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv tini ca-certificates openjdk-17-jre-headless \
      redis-server mosquitto mosquitto-clients postgresql-15 prometheus-alertmanager \
 && rm -rf /var/lib/apt/lists/*
# One unprivileged user for every process, with a home it can write (the worker's run directory lives
# there unless IOC_RUN_DIR names a volume); the data directories the volumes mount over are its own, so a
# new named volume starts owned by it.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/ioc --create-home --shell /usr/sbin/nologin ioc \
 && install -d -o ioc -g ioc /var/lib/ioc/state /var/lib/ioc/kafka /var/lib/ioc/redis /var/lib/ioc/mosquitto \
      /var/lib/ioc/postgres /var/lib/ioc/alertmanager

FROM runtime
COPY --from=kafka-jars /opt/kafka/libs /opt/kafka/libs
# ioc's dependencies at the versions locked in deploy/docker/requirements.lock (`make lock`), so an image
# built later installs what was tested; a change to the code alone does not reinstall them.
COPY deploy/docker/requirements.lock /build/requirements.lock
RUN python3 -m venv /opt/ioc \
 && PIP_CERT=/etc/ssl/certs/ca-certificates.crt /opt/ioc/bin/pip install --no-cache-dir --quiet -r /build/requirements.lock
COPY pyproject.toml README.md /build/src/
COPY ioc /build/src/ioc
COPY streams /build/src/streams
COPY connectors /build/src/connectors
RUN PIP_CERT=/etc/ssl/certs/ca-certificates.crt /opt/ioc/bin/pip install --no-cache-dir --quiet --no-deps /build/src \
 && /opt/ioc/bin/pip check \
 && rm -rf /build

WORKDIR /app
COPY deploy/alertmanager /app/deploy/alertmanager
COPY deploy/docker/bin/ /usr/local/bin/
ENV PATH=/opt/ioc/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    IOC_RUN_DIR=/var/lib/ioc/state \
    IOC_CACHE_DIR=/var/lib/ioc/cache \
    IOC_KAFKA_VERSION=3.9.2
USER ioc
# tini reaps children and hands SIGTERM on, so `docker stop` is every process's clean stop.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["ioc", "--help"]

# The Storm supervisors of docker-compose.yml: the official Storm image plus what the workers
# they launch need, as stack/storm/cluster.sh provides it on this machine: the project's
# Python packages in a virtualenv first on PATH (workers inherit the supervisor's environment
# and run `streamparse_run`), and msgpack-core in extlib/ for the msgpack multilang serializer
# (`sparse submit` uploads a jar without dependencies). The topology's own code travels in its
# jar. Versions come from docker-compose.yml's build arguments, which a unit test keeps equal
# to stack/storm/pom.xml.
ARG STORM_VERSION

FROM maven:3.9.9-eclipse-temurin-17 AS jars
ARG MSGPACK_VERSION
RUN mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      "-Dartifact=org.msgpack:msgpack-core:${MSGPACK_VERSION}" -DoutputDirectory=/jars

FROM storm:${STORM_VERSION}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /opt/botscore/requirements.txt
RUN python3 -m venv /opt/botscore/venv \
    && /opt/botscore/venv/bin/pip install --no-cache-dir -r /opt/botscore/requirements.txt
COPY --from=jars /jars/ /apache-storm/extlib/
ENV PATH=/opt/botscore/venv/bin:$PATH

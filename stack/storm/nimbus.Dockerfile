# The Storm Nimbus of docker-compose.yml: the official Storm image plus botscore's scheduler
# (stack/storm/scheduler/, which cluster.yaml's storm.scheduler names and cluster.sh compiles
# for `make cluster`), compiled against the image's own Storm jars into extlib-daemon/, which
# `storm nimbus` puts on Nimbus's classpath.
ARG STORM_VERSION

FROM storm:${STORM_VERSION} AS storm

FROM maven:3.9.9-eclipse-temurin-17 AS scheduler
ARG STORM_VERSION
# The official image unpacks Storm into /apache-storm-VERSION, its working directory.
COPY --from=storm /apache-storm-${STORM_VERSION}/lib/ /storm-lib/
COPY stack/storm/scheduler/ /src/
RUN find /src -name '*.java' -print0 \
      | xargs -0 javac --release 17 -Xlint:all -Werror -cp '/storm-lib/*' -d /classes \
    && jar cf /botscore-scheduler.jar -C /classes .

FROM storm:${STORM_VERSION}
COPY --from=scheduler /botscore-scheduler.jar extlib-daemon/

package botscore.storm;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.storm.metric.StormMetricsRegistry;
import org.apache.storm.scheduler.Cluster;
import org.apache.storm.scheduler.DefaultScheduler;
import org.apache.storm.scheduler.IScheduler;
import org.apache.storm.scheduler.SchedulerAssignment;
import org.apache.storm.scheduler.SupervisorDetails;
import org.apache.storm.scheduler.Topologies;
import org.apache.storm.scheduler.WorkerSlot;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Storm's default scheduler, except that the dead workers of a lost supervisor are moved at once.
 *
 * <p>Nimbus counts an executor dead only once its heartbeats are {@code nimbus.task.timeout.secs}
 * old, which must outlast a supervisor relaunching a dead worker on the same slot. A lost
 * supervisor relaunches nothing, so the slots of its dead workers are freed here and
 * {@link DefaultScheduler} places their executors on live supervisors in the same round.
 *
 * <p>A supervisor is lost when it is gone from ZooKeeper (its session ended); a worker of it is
 * dead when its slot's port does not accept a connection within {@value #PROBE_TIMEOUT_MS} ms: a
 * dead process refuses at once, a dead machine does not answer. Workers that still accept stay
 * where they run: those of a supervisor whose session lapsed because its machine was too busy to
 * ping ZooKeeper (the kernel accepts however busy the JVM is), and those of a supervisor
 * stopped alone, which it adopts when it comes back, as in stock Storm. Select it with {@code
 * storm.scheduler: botscore.storm.LostSupervisorScheduler}.
 */
public class LostSupervisorScheduler implements IScheduler {
    private static final Logger LOG = LoggerFactory.getLogger(LostSupervisorScheduler.class);
    static final int PROBE_TIMEOUT_MS = 500;

    /** The host of each supervisor seen since Nimbus started, by supervisor id. */
    private final Map<String, String> hosts = new HashMap<>();

    @Override
    public void prepare(Map<String, Object> conf, StormMetricsRegistry metricsRegistry) {
        // nothing to prepare
    }

    @Override
    public void schedule(Topologies topologies, Cluster cluster) {
        for (SupervisorDetails supervisor : cluster.getSupervisors().values()) {
            if (supervisor.getHost() != null) {
                hosts.put(supervisor.getId(), supervisor.getHost());
            }
        }
        for (SchedulerAssignment assignment : cluster.getAssignments().values()) {
            Set<WorkerSlot> dead = assignment.getSlots().stream()
                .filter(slot -> cluster.getSupervisorById(slot.getNodeId()) == null)
                .filter(this::isDead)
                .collect(Collectors.toSet());
            if (!dead.isEmpty()) {
                LOG.info("Moving {} off dead workers of lost supervisors: {}",
                    assignment.getTopologyId(), dead);
                cluster.freeSlots(dead);
            }
        }
        DefaultScheduler.defaultSchedule(topologies, cluster);
    }

    /** A worker of a supervisor gone from ZooKeeper is dead unless its port still accepts. */
    private boolean isDead(WorkerSlot slot) {
        String host = hosts.get(slot.getNodeId());
        if (host == null) {
            LOG.info("Slot {} of a supervisor never seen here and gone from ZooKeeper: dead", slot);
            return true;
        }
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(host, slot.getPort()), PROBE_TIMEOUT_MS);
            LOG.info("Supervisor of {} is gone from ZooKeeper but {}:{} accepts: its worker stays",
                slot, host, slot.getPort());
            return false;
        } catch (IOException | RuntimeException e) { // a scheduler that throws halts Nimbus
            LOG.info("Supervisor of {} is gone from ZooKeeper and {}:{} does not accept ({}): dead",
                slot, host, slot.getPort(), e.getMessage());
            return true;
        }
    }

    @Override
    public Map<String, Map<String, Double>> config() {
        return Map.of();
    }
}

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
 * Storm's default scheduler, except that workers on a lost supervisor are moved at once.
 *
 * <p>Nimbus counts an executor dead only once its heartbeats are {@code nimbus.task.timeout.secs}
 * old, which must outlast a supervisor relaunching a dead worker on the same slot. A lost
 * supervisor relaunches nothing, so its slots are freed here and {@link DefaultScheduler} places
 * their executors on live supervisors in the same round.
 *
 * <p>Lost means gone from ZooKeeper (its session ended) and its Thrift port not accepting a
 * connection within {@value #PROBE_TIMEOUT_MS} ms: a dead process refuses at once, a dead machine
 * does not answer. A live supervisor whose session lapsed because its machine was too busy to
 * ping ZooKeeper still accepts (the kernel does, however busy the JVM), so its workers stay: a
 * short session then costs no needless restarts. Select it with {@code storm.scheduler:
 * botscore.storm.LostSupervisorScheduler}.
 *
 * <p>The price: a supervisor stopped on purpose (a restart) loses its workers too, where stock
 * Storm leaves them running for it to adopt; they stop themselves once unassigned.
 */
public class LostSupervisorScheduler implements IScheduler {
    private static final Logger LOG = LoggerFactory.getLogger(LostSupervisorScheduler.class);
    static final int PROBE_TIMEOUT_MS = 500;

    /** Where each supervisor seen since Nimbus started takes Thrift calls, by supervisor id. */
    private final Map<String, InetSocketAddress> thriftAddresses = new HashMap<>();

    @Override
    public void prepare(Map<String, Object> conf, StormMetricsRegistry metricsRegistry) {
        // nothing to prepare
    }

    @Override
    public void schedule(Topologies topologies, Cluster cluster) {
        for (SupervisorDetails supervisor : cluster.getSupervisors().values()) {
            thriftAddresses.put(supervisor.getId(),
                InetSocketAddress.createUnresolved(supervisor.getHost(), supervisor.getServerPort()));
        }
        Map<String, Boolean> lostById = new HashMap<>();
        for (SchedulerAssignment assignment : cluster.getAssignments().values()) {
            Set<WorkerSlot> lost = assignment.getSlots().stream()
                .filter(slot -> cluster.getSupervisorById(slot.getNodeId()) == null)
                .filter(slot -> lostById.computeIfAbsent(slot.getNodeId(), this::isLost))
                .collect(Collectors.toSet());
            if (!lost.isEmpty()) {
                LOG.info("Moving {} off slots of lost supervisors: {}",
                    assignment.getTopologyId(), lost);
                cluster.freeSlots(lost);
            }
        }
        DefaultScheduler.defaultSchedule(topologies, cluster);
    }

    /** A supervisor gone from ZooKeeper is lost unless its Thrift port still accepts. */
    private boolean isLost(String supervisorId) {
        InetSocketAddress unresolved = thriftAddresses.get(supervisorId);
        if (unresolved == null) {
            LOG.info("Supervisor {} is gone from ZooKeeper and was never seen here: lost", supervisorId);
            return true;
        }
        InetSocketAddress address =
            new InetSocketAddress(unresolved.getHostString(), unresolved.getPort());
        try (Socket socket = new Socket()) {
            socket.connect(address, PROBE_TIMEOUT_MS);
            LOG.info("Supervisor {} is gone from ZooKeeper but {} accepts: its workers stay",
                supervisorId, unresolved);
            return false;
        } catch (IOException e) {
            LOG.info("Supervisor {} is gone from ZooKeeper and {} does not accept ({}): lost",
                supervisorId, unresolved, e.getMessage());
            return true;
        }
    }

    @Override
    public Map<String, Map<String, Double>> config() {
        return Map.of();
    }
}

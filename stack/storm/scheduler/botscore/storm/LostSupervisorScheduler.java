package botscore.storm;

import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.storm.metric.StormMetricsRegistry;
import org.apache.storm.scheduler.Cluster;
import org.apache.storm.scheduler.DefaultScheduler;
import org.apache.storm.scheduler.IScheduler;
import org.apache.storm.scheduler.SchedulerAssignment;
import org.apache.storm.scheduler.Topologies;
import org.apache.storm.scheduler.WorkerSlot;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Storm's default scheduler, except that workers on a supervisor gone from ZooKeeper are moved
 * at once.
 *
 * <p>Nimbus counts an executor dead only once its heartbeats are {@code nimbus.task.timeout.secs}
 * old, which must outlast a supervisor relaunching a dead worker on the same slot. A supervisor
 * whose ZooKeeper session ended (its machine or its process died) relaunches nothing, so its
 * slots are freed here and {@link DefaultScheduler} places their executors on live supervisors
 * in the same round. Select it with {@code storm.scheduler: botscore.storm.LostSupervisorScheduler}.
 *
 * <p>The price: a supervisor stopped on purpose (a restart) loses its workers too, where stock
 * Storm leaves them running for it to adopt; they stop themselves once unassigned.
 */
public class LostSupervisorScheduler implements IScheduler {
    private static final Logger LOG = LoggerFactory.getLogger(LostSupervisorScheduler.class);

    @Override
    public void prepare(Map<String, Object> conf, StormMetricsRegistry metricsRegistry) {
        // nothing to prepare
    }

    @Override
    public void schedule(Topologies topologies, Cluster cluster) {
        for (SchedulerAssignment assignment : cluster.getAssignments().values()) {
            Set<WorkerSlot> lost = assignment.getSlots().stream()
                .filter(slot -> cluster.getSupervisorById(slot.getNodeId()) == null)
                .collect(Collectors.toSet());
            if (!lost.isEmpty()) {
                LOG.info("Moving {} off slots of supervisors gone from ZooKeeper: {}",
                    assignment.getTopologyId(), lost);
                cluster.freeSlots(lost);
            }
        }
        DefaultScheduler.defaultSchedule(topologies, cluster);
    }

    @Override
    public Map<String, Map<String, Double>> config() {
        return Map.of();
    }
}

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.storm.multilang.BoltMsg;
import org.apache.storm.multilang.ISerializer;
import org.apache.storm.multilang.NoOutputException;
import org.apache.storm.multilang.ShellMsg;
import org.apache.storm.multilang.SpoutMsg;
import org.apache.storm.task.TopologyContext;
import org.apache.storm.testing.TestWordCounter;
import org.apache.storm.testing.TestWordSpout;
import org.apache.storm.topology.TopologyBuilder;
import org.apache.storm.tuple.Fields;

/**
 * Storm's end of a multilang pipe, for tests: a serializer class (argument 1) talks to the
 * test over this process's stdin and stdout.
 *
 * <p>After the handshake it answers the pid as a bolt message from component "pid". Then it
 * answers every message it reads with a bolt message from component COMMAND whose tuple lists
 * the fields the serializer parsed (id, anchors, need_task_ids, msg, metric name, metric
 * params, log level, tuple), followed by task ids [7, 8] for an emit that wants them and by a
 * spout message "ack" with the id for an ack. It exits 0 when the serializer reports the end of
 * the input (NoOutputException) and 1 on an IOException, each printed to stderr.
 */
public final class MultilangEcho {
    private MultilangEcho() {
    }

    public static void main(String[] args) throws Exception {
        // The protocol owns stdout: anything else printed goes to stderr.
        FileOutputStream protocolOut = new FileOutputStream(FileDescriptor.out);
        System.setOut(System.err);
        ISerializer serializer = (ISerializer) Class.forName(args[0])
            .getDeclaredConstructor().newInstance();
        serializer.initialize(protocolOut, System.in);
        try {
            Number pid = serializer.connect(conf(), context(args[1]));
            serializer.writeBoltMsg(bolt("pid", "default", 0, List.of(pid)));
            while (true) {
                echo(serializer, serializer.readShellMsg());
            }
        } catch (NoOutputException e) {
            System.err.println("NoOutputException: " + e.getMessage());
        } catch (IOException e) {
            System.err.println("IOException: " + e.getMessage());
            System.exit(1);
        }
    }

    private static void echo(ISerializer serializer, ShellMsg msg) throws IOException {
        List<Object> parsed = Arrays.asList(msg.getId(), msg.getAnchors(),
            msg.areTaskIdsNeeded(), msg.getMsg(), msg.getMetricName(), msg.getMetricParams(),
            msg.getLogLevel() == null ? null : msg.getLogLevel().name(), msg.getTuple());
        serializer.writeBoltMsg(bolt(msg.getCommand(), msg.getStream(), msg.getTask(),
            new ArrayList<>(parsed)));
        if (msg.getCommand().equals("emit") && msg.areTaskIdsNeeded()) {
            serializer.writeTaskIds(List.of(7, 8));
        }
        if (msg.getCommand().equals("ack")) {
            SpoutMsg ack = new SpoutMsg();
            ack.setCommand("ack");
            ack.setId(msg.getId());
            serializer.writeSpoutMsg(ack);
        }
    }

    private static BoltMsg bolt(String comp, String stream, long task, List<Object> tuple) {
        BoltMsg msg = new BoltMsg();
        msg.setId("echo");
        msg.setComp(comp);
        msg.setStream(stream);
        msg.setTask(task);
        msg.setTuple(tuple);
        return msg;
    }

    private static Map<String, Object> conf() {
        Map<String, Object> conf = new HashMap<>();
        conf.put("topology.name", "echo");
        conf.put("topology.max.spout.pending", 5000);
        conf.put("topology.debug", false);
        conf.put("a.float", 0.5);
        conf.put("a.list", List.of(1, "x"));
        conf.put("a.null", null);
        return conf;
    }

    /** Task 2 of component "echo", fed by component "src" (task 1): a real Storm context. */
    private static TopologyContext context(String pidDir) {
        TopologyBuilder builder = new TopologyBuilder();
        builder.setSpout("src", new TestWordSpout());
        builder.setBolt("echo", new TestWordCounter()).shuffleGrouping("src");
        Map<String, Map<String, Fields>> fields = new HashMap<>();
        fields.put("src", Map.of("default", new Fields("word")));
        fields.put("echo", Map.of("default", new Fields("word", "count")));
        return new TopologyContext(builder.createTopology(), conf(),
            Map.of(1, "src", 2, "echo"), Map.of("src", List.of(1), "echo", List.of(2)),
            fields, new HashMap<>(), "echo-1", null, pidDir, 2, 6700, List.of(1, 2),
            new HashMap<>(), new HashMap<>(), new HashMap<>(), new HashMap<>(),
            new AtomicBoolean(false), null);
    }
}

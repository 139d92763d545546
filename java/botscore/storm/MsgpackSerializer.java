package botscore.storm;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.storm.multilang.BoltMsg;
import org.apache.storm.multilang.ISerializer;
import org.apache.storm.multilang.NoOutputException;
import org.apache.storm.multilang.ShellMsg;
import org.apache.storm.multilang.SpoutMsg;
import org.apache.storm.shade.net.minidev.json.JSONValue;
import org.apache.storm.shade.net.minidev.json.parser.ParseException;
import org.apache.storm.task.TopologyContext;
import org.apache.storm.utils.Utils;
import org.msgpack.core.MessageFormat;
import org.msgpack.core.MessageInsufficientBufferException;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessagePackException;
import org.msgpack.core.MessagePacker;
import org.msgpack.core.MessageUnpacker;

/**
 * Storm's multilang protocol in MessagePack, for pystorm's {@code MsgpackSerializer}.
 *
 * <p>The messages have the shapes of Storm's {@code JsonSerializer}, so a component sees the
 * same values under either serializer, except that bytes travel as bytes (msgpack bin). Each
 * message is one msgpack value, with no framing around it: pystorm reads them as a stream.
 * Map keys that are not strings are written as their string form, as JSON does, because
 * pystorm's unpacker accepts only string keys. Integers must fit in 64 bits.
 *
 * <p>Select it with {@code topology.multilang.serializer: botscore.storm.MsgpackSerializer} and
 * {@code "serializer": "msgpack"} in config.json together: {@code botscore.multilang} does both.
 */
public class MsgpackSerializer implements ISerializer {
    private static final long serialVersionUID = 1L;

    private transient MessagePacker toProcess;
    private transient MessageUnpacker fromProcess;

    @Override
    public void initialize(OutputStream processIn, InputStream processOut) {
        toProcess = MessagePack.newDefaultPacker(processIn);
        fromProcess = MessagePack.newDefaultUnpacker(processOut);
    }

    @Override
    public Number connect(Map<String, Object> conf, TopologyContext context)
        throws IOException, NoOutputException {
        // The context is JSON-aware only, and the configuration may hold any JSON-able value:
        // going through Storm's own JSON once gives exactly the handshake JsonSerializer sends.
        Map<String, Object> setup = new HashMap<>();
        setup.put("pidDir", context.getPIDDir());
        setup.put("conf", conf);
        setup.put("context", context);
        try {
            writeMessage(JSONValue.parseWithException(JSONValue.toJSONString(setup)));
        } catch (ParseException e) {
            throw new IOException("the handshake is not valid JSON", e);
        }
        Object pid = readMap().get("pid");
        if (!(pid instanceof Number)) {
            throw new IOException("handshake answer without a numeric pid: " + pid);
        }
        return (Number) pid;
    }

    @Override
    public void writeBoltMsg(BoltMsg msg) throws IOException {
        Map<String, Object> out = new HashMap<>();
        out.put("id", msg.getId());
        out.put("comp", msg.getComp());
        out.put("stream", msg.getStream());
        out.put("task", msg.getTask());
        out.put("tuple", msg.getTuple());
        writeMessage(out);
    }

    @Override
    public void writeSpoutMsg(SpoutMsg msg) throws IOException {
        Map<String, Object> out = new HashMap<>();
        out.put("command", msg.getCommand());
        out.put("id", msg.getId());
        writeMessage(out);
    }

    @Override
    public void writeTaskIds(List<Integer> taskIds) throws IOException {
        writeMessage(taskIds);
    }

    @Override
    @SuppressWarnings("unchecked")
    public ShellMsg readShellMsg() throws IOException, NoOutputException {
        Map<Object, Object> in = readMap();
        ShellMsg msg = new ShellMsg();
        Object command = in.get("command");
        if (!(command instanceof String)) {
            throw new IOException("multilang message without a command: " + in);
        }
        msg.setCommand((String) command);
        msg.setId(in.get("id"));
        msg.setMsg((String) in.get("msg"));
        Object stream = in.get("stream");
        msg.setStream(stream == null ? Utils.DEFAULT_STREAM_ID : (String) stream);
        Object task = in.get("task");
        msg.setTask(task == null ? 0 : ((Number) task).longValue());
        Object needTaskIds = in.get("need_task_ids");
        msg.setNeedTaskIds(needTaskIds == null || (Boolean) needTaskIds);
        msg.setTuple((List<Object>) in.get("tuple"));
        Object anchors = in.get("anchors");
        if (anchors instanceof String) {
            msg.addAnchor((String) anchors);
        } else if (anchors != null) {
            for (Object anchor : (List<Object>) anchors) {
                msg.addAnchor((String) anchor);
            }
        }
        Object name = in.get("name");
        msg.setMetricName(name instanceof String ? (String) name : null);
        msg.setMetricParams(in.get("params"));
        Object level = in.get("level");
        if (command.equals("log") && level instanceof Long) {
            msg.setLogLevel(((Long) level).intValue());
        }
        return msg;
    }

    private void writeMessage(Object message) throws IOException {
        pack(message);
        toProcess.flush();
    }

    private void pack(Object value) throws IOException {
        if (value == null) {
            toProcess.packNil();
        } else if (value instanceof String) {
            toProcess.packString((String) value);
        } else if (value instanceof Boolean) {
            toProcess.packBoolean((Boolean) value);
        } else if (value instanceof Long || value instanceof Integer
            || value instanceof Short || value instanceof Byte) {
            toProcess.packLong(((Number) value).longValue());
        } else if (value instanceof BigInteger) {
            toProcess.packBigInteger((BigInteger) value);
        } else if (value instanceof Double || value instanceof Float) {
            toProcess.packDouble(((Number) value).doubleValue());
        } else if (value instanceof byte[]) {
            byte[] bytes = (byte[]) value;
            toProcess.packBinaryHeader(bytes.length);
            toProcess.writePayload(bytes);
        } else if (value instanceof Map) {
            Map<?, ?> map = (Map<?, ?>) value;
            toProcess.packMapHeader(map.size());
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                toProcess.packString(String.valueOf(entry.getKey()));
                pack(entry.getValue());
            }
        } else if (value instanceof Collection) {
            Collection<?> items = (Collection<?>) value;
            toProcess.packArrayHeader(items.size());
            for (Object item : items) {
                pack(item);
            }
        } else if (value instanceof Object[]) {
            Object[] items = (Object[]) value;
            toProcess.packArrayHeader(items.length);
            for (Object item : items) {
                pack(item);
            }
        } else if (value instanceof Number) {
            toProcess.packDouble(((Number) value).doubleValue());
        } else if (value instanceof Character) {
            toProcess.packString(value.toString());
        } else {
            throw new IOException("cannot write a " + value.getClass().getName()
                + " to a multilang process in msgpack: " + value);
        }
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> readMap() throws IOException, NoOutputException {
        Object message = readMessage();
        if (!(message instanceof Map)) {
            throw new IOException("expected a msgpack map from the multilang process, got "
                + message);
        }
        return (Map<Object, Object>) message;
    }

    private Object readMessage() throws IOException, NoOutputException {
        try {
            if (!fromProcess.hasNext()) {
                throw new NoOutputException("Pipe to subprocess seems to be broken!"
                    + " No output read.\nSerializer Exception:\n");
            }
            return unpack();
        } catch (MessageInsufficientBufferException e) {
            throw new NoOutputException("Pipe to subprocess seems to be broken!"
                + " It ended in the middle of a message.\nSerializer Exception:\n" + e);
        } catch (MessagePackException e) {
            // msgpack-core's errors are unchecked; Storm expects an IOException.
            throw new IOException("the multilang process wrote something that is not msgpack", e);
        }
    }

    private Object unpack() throws IOException {
        MessageFormat format = fromProcess.getNextFormat();
        switch (format.getValueType()) {
            case NIL:
                fromProcess.unpackNil();
                return null;
            case BOOLEAN:
                return fromProcess.unpackBoolean();
            case INTEGER:
                if (format == MessageFormat.UINT64) {
                    BigInteger big = fromProcess.unpackBigInteger();
                    return big.bitLength() < 64 ? (Object) big.longValue() : big;
                }
                return fromProcess.unpackLong();
            case FLOAT:
                return fromProcess.unpackDouble();
            case STRING:
                return fromProcess.unpackString();
            case BINARY:
                return fromProcess.readPayload(fromProcess.unpackBinaryHeader());
            case ARRAY: {
                int size = fromProcess.unpackArrayHeader();
                List<Object> items = new ArrayList<>(size);
                for (int i = 0; i < size; i++) {
                    items.add(unpack());
                }
                return items;
            }
            case MAP: {
                int size = fromProcess.unpackMapHeader();
                Map<Object, Object> map = new HashMap<>(size * 2);
                for (int i = 0; i < size; i++) {
                    Object key = unpack();
                    map.put(key, unpack());
                }
                return map;
            }
            default:
                throw new IOException("unsupported msgpack value from the multilang process: "
                    + format);
        }
    }
}

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import com.google.protobuf.util.JsonFormat;
import io.botscore.proto.v1.DeadLetter;
import io.botscore.proto.v1.ThreatScore;
import io.botscore.proto.v1.UserFeatures;
import io.botscore.proto.v1.WebLog;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;

/**
 * A Java reader and writer of the wire contract, on the code generated into gen/java: for each
 * stdin line "MessageName BASE64", parses the bytes with the generated class and prints
 * "BASE64-OF-ITS-BYTES-AGAIN TAB JSON" (the JSON mapping), or "error TAB why".
 */
public final class ContractEcho {
  private static final Map<String, Parser<? extends Message>> PARSERS =
      Map.of(
          "WebLog", WebLog.parser(),
          "UserFeatures", UserFeatures.parser(),
          "ThreatScore", ThreatScore.parser(),
          "DeadLetter", DeadLetter.parser());

  private ContractEcho() {}

  public static void main(String[] args) throws Exception {
    JsonFormat.Printer json = JsonFormat.printer().omittingInsignificantWhitespace();
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    StringBuilder out = new StringBuilder();
    for (String line = in.readLine(); line != null; line = in.readLine()) {
      String[] parts = line.split(" ", 2);
      Parser<? extends Message> parser = PARSERS.get(parts[0]);
      if (parser == null || parts.length != 2) {
        out.append("error\tnot 'MessageName BASE64': ").append(parts[0]).append('\n');
        continue;
      }
      try {
        Message message = parser.parseFrom(Base64.getDecoder().decode(parts[1]));
        out.append(Base64.getEncoder().encodeToString(message.toByteArray()))
            .append('\t')
            .append(json.print(message))
            .append('\n');
      } catch (InvalidProtocolBufferException | IllegalArgumentException e) {
        out.append("error\t").append(e.getMessage()).append('\n');
      }
    }
    System.out.print(out);
    System.out.flush();
  }
}

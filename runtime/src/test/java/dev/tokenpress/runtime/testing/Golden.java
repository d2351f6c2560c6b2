package dev.tokenpress.runtime.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** The reference outputs of llama2.c in {@code stories260K/GOLDEN.md}, parsed at test time. */
public final class Golden {
  /** One prompt: its text, the token ids llama2.c encodes, the ids and text it generates. */
  public record Case(String prompt, int[] promptIds, int[] generatedIds, String text) {
    @Override
    public String toString() {
      return "\"" + prompt + "\"";
    }
  }

  /** llama2.c's {@code -n 48}: forward passes including the prompt. */
  public static final int STEPS = 48;

  private Golden() {}

  public static List<Case> read(Path dir) {
    List<String> lines;
    try {
      lines = Files.readAllLines(dir.resolve("GOLDEN.md"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    List<Case> cases = new ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      String l = lines.get(i);
      if (l.startsWith("PROMPT: ")) {
        String prompt = unquote(l.substring(8));
        int[] promptIds = ids(lines.get(i + 1), "prompt ids: ");
        int[] gen = ids(lines.get(i + 2), "generated ids: ");
        String text =
            unquote(lines.get(i + 3).substring("text: ".length()))
                .replace("\\n", "\n")
                .replace("\\\"", "\"");
        cases.add(new Case(prompt, promptIds, gen, text));
      }
    }
    if (cases.size() != 3) {
      throw new IllegalStateException(
          "expected 3 golden prompts in GOLDEN.md, found " + cases.size());
    }
    return cases;
  }

  private static int[] ids(String line, String prefix) {
    if (!line.startsWith(prefix)) {
      throw new IllegalStateException("expected '" + prefix + "' line, found: " + line);
    }
    return Arrays.stream(line.substring(prefix.length()).trim().split("\\s+"))
        .mapToInt(Integer::parseInt)
        .toArray();
  }

  private static String unquote(String s) {
    String t = s.trim();
    return t.startsWith("\"") && t.endsWith("\"") ? t.substring(1, t.length() - 1) : t;
  }
}

package dev.tokenpress.evaluate.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The scoring rules of the bundled model's training script ({@code
 * models/tiny-llava-shapes/train.py}, {@code evaluate} and {@code tinyllava.normalize_answer}), so
 * that {@code tokenpress eval} and the trainer's report count the same way:
 *
 * <ul>
 *   <li>exact match after normalisation: lower-case, the pre-tokens {@code \w+|[^\w\s]+} joined by
 *       single spaces;
 *   <li>captions: the normalised text is split on {@code " , "}, {@code " ."} and a leading {@code
 *       "."}; each chunk, stripped of spaces, dots and commas, that matches {@code ^a (\w+) (\w+)
 *       (\w+) at the (.+)$} is an object (size, colour, shape, position). True positives match
 *       ground-truth objects one to one (all four fields); an object is a hallucination (CHAIR)
 *       when no object of its colour and shape is in the image.
 * </ul>
 */
public final class AnswerScoring {
  private static final Pattern PRE_TOKEN =
      Pattern.compile("\\w+|[^\\w\\s]+", Pattern.UNICODE_CHARACTER_CLASS);
  private static final Pattern CAPTION_SPLIT = Pattern.compile(" , | \\.|^\\.");
  private static final Pattern CAPTION_OBJECT =
      Pattern.compile("^a (\\w+) (\\w+) (\\w+) at the (.+)$", Pattern.UNICODE_CHARACTER_CLASS);

  /**
   * One captioned object.
   *
   * @param size size word
   * @param color colour word
   * @param shape shape word
   * @param position position phrase
   */
  public record CaptionObject(String size, String color, String shape, String position) {}

  private AnswerScoring() {}

  /** {@code tinyllava.normalize_answer}. */
  public static String normalize(String text) {
    Matcher m = PRE_TOKEN.matcher(text.toLowerCase(java.util.Locale.ROOT));
    StringBuilder b = new StringBuilder();
    while (m.find()) {
      if (b.length() > 0) {
        b.append(' ');
      }
      b.append(m.group());
    }
    return b.toString();
  }

  /** Exact match after {@link #normalize}. */
  public static boolean exactMatch(String predicted, String expected) {
    return normalize(predicted).equals(normalize(expected));
  }

  /**
   * POPE's reading of a yes/no answer ({@code evaluate.py} of the POPE repository): "no" when the
   * answer's words (after {@link #normalize}) contain {@code no} or {@code not}, else "yes".
   */
  public static boolean popeYes(String answer) {
    for (String w : normalize(answer).split(" ")) {
      if (w.equals("no") || w.equals("not")) {
        return false;
      }
    }
    return true;
  }

  /**
   * POPE counts of one split of the {@code exists} questions: accuracy, precision, recall and F1 of
   * "yes" as the positive class, and the share of "yes" answers.
   */
  public static final class PopeTally {
    private long tp;
    private long fp;
    private long tn;
    private long fn;

    /**
     * One question: whether its answer is "yes" and whether the model said "yes" ({@link
     * #popeYes}).
     */
    public void add(boolean expectedYes, boolean predictedYes) {
      if (expectedYes) {
        if (predictedYes) {
          tp++;
        } else {
          fn++;
        }
      } else if (predictedYes) {
        fp++;
      } else {
        tn++;
      }
    }

    public long questions() {
      return tp + fp + tn + fn;
    }

    public double accuracy() {
      return (tp + tn) / (double) Math.max(1, questions());
    }

    public double precision() {
      return tp / (double) Math.max(1, tp + fp);
    }

    public double recall() {
      return tp / (double) Math.max(1, tp + fn);
    }

    public double f1() {
      double p = precision();
      double r = recall();
      return 2 * p * r / Math.max(1e-9, p + r);
    }

    public double yesRatio() {
      return (tp + fp) / (double) Math.max(1, questions());
    }
  }

  /** {@code train.parse_caption}: the objects a caption names, in order. */
  public static List<CaptionObject> parseCaption(String text) {
    List<CaptionObject> out = new ArrayList<>();
    for (String chunk : CAPTION_SPLIT.split(normalize(text), -1)) {
      Matcher m = CAPTION_OBJECT.matcher(strip(chunk, " .,"));
      if (m.matches()) {
        out.add(new CaptionObject(m.group(1), m.group(2), m.group(3), m.group(4)));
      }
    }
    return out;
  }

  /** Python's {@code str.strip(chars)}. */
  static String strip(String s, String chars) {
    int a = 0;
    int b = s.length();
    while (a < b && chars.indexOf(s.charAt(a)) >= 0) {
      a++;
    }
    while (b > a && chars.indexOf(s.charAt(b - 1)) >= 0) {
      b--;
    }
    return s.substring(a, b);
  }

  /**
   * Running caption counts over images: true positives, predicted, ground-truth and hallucinated
   * objects; object F1 and CHAIR as the training script reports them ({@link #chair()} = CHAIR_I),
   * and CHAIR_S (captions with a hallucination).
   */
  public static final class CaptionTally {
    private long truePositives;
    private long predicted;
    private long groundTruth;
    private long hallucinated;
    private long captions;
    private long captionsHallucinating;

    /**
     * Scores one image's caption against its objects; returns the number of hallucinated objects.
     */
    public long add(List<CaptionObject> predictedObjects, List<CaptionObject> truth) {
      long before = hallucinated;
      List<CaptionObject> left = new ArrayList<>(truth);
      for (CaptionObject o : predictedObjects) {
        if (left.remove(o)) {
          truePositives++;
        }
        boolean present = false;
        for (CaptionObject t : truth) {
          present |= t.color().equals(o.color()) && t.shape().equals(o.shape());
        }
        if (!present) {
          hallucinated++;
        }
      }
      predicted += predictedObjects.size();
      groundTruth += truth.size();
      captions++;
      if (hallucinated > before) {
        captionsHallucinating++;
      }
      return hallucinated - before;
    }

    /** CHAIR_S: the share of captions with at least one hallucinated object. */
    public double chairS() {
      return captionsHallucinating / (double) Math.max(1, captions);
    }

    /** CHAIR_I: hallucinated objects per mentioned object (the same as {@link #chair()}). */
    public double chairI() {
      return chair();
    }

    public double precision() {
      return truePositives / (double) Math.max(1, predicted);
    }

    public double recall() {
      return truePositives / (double) Math.max(1, groundTruth);
    }

    public double f1() {
      double p = precision();
      double r = recall();
      return 2 * p * r / Math.max(1e-9, p + r);
    }

    /** Hallucinated objects per predicted object. */
    public double chair() {
      return hallucinated / (double) Math.max(1, predicted);
    }

    public long predicted() {
      return predicted;
    }

    public long groundTruth() {
      return groundTruth;
    }

    public long truePositives() {
      return truePositives;
    }

    public long hallucinated() {
      return hallucinated;
    }
  }
}

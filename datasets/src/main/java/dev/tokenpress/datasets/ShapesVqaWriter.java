package dev.tokenpress.datasets;

import java.awt.image.BufferedImage;
import java.awt.image.DataBufferByte;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.imageio.ImageIO;

/**
 * Writes ShapesVQA splits to disk: PNG images and masks, {@code scenes.jsonl}, {@code
 * questions.jsonl}.
 */
public final class ShapesVqaWriter {
  private final ShapesVqa generator;
  private final int threads;

  public ShapesVqaWriter(ShapesVqa generator, int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    this.generator = generator;
    this.threads = threads;
  }

  /** Writes scenes {@code 0..count-1} of {@code split} under {@code out/split/}. */
  public void writeSplit(Path out, String split, int count) throws IOException {
    Path dir = out.resolve(split);
    Files.createDirectories(dir.resolve("images"));
    Files.createDirectories(dir.resolve("masks"));
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try (BufferedWriter scenes =
            Files.newBufferedWriter(dir.resolve("scenes.jsonl"), StandardCharsets.UTF_8);
        BufferedWriter questions =
            Files.newBufferedWriter(dir.resolve("questions.jsonl"), StandardCharsets.UTF_8)) {
      int chunk = 256;
      for (int start = 0; start < count; start += chunk) {
        List<Future<Scene>> futures = new ArrayList<>(chunk);
        for (int i = start; i < Math.min(count, start + chunk); i++) {
          final int index = i;
          futures.add(pool.submit(() -> writeImages(dir, generator.scene(split, index))));
        }
        for (Future<Scene> f : futures) {
          Scene scene = f.get();
          scenes.write(sceneJson(scene));
          scenes.newLine();
          String image = imageFile(scene);
          for (Question q : scene.questions()) {
            questions.write(
                "{\"id\":"
                    + Json.quote(q.id())
                    + ",\"image_id\":"
                    + Json.quote(scene.imageId())
                    + ",\"image\":"
                    + Json.quote(image)
                    + ",\"kind\":"
                    + Json.quote(q.kind())
                    + ",\"question\":"
                    + Json.quote(q.question())
                    + ",\"answer\":"
                    + Json.quote(q.answer())
                    + (q.sampling() == null ? "" : ",\"sampling\":" + Json.quote(q.sampling()))
                    + "}");
            questions.newLine();
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while writing split " + split, e);
    } catch (ExecutionException e) {
      throw new IOException("failed to write split " + split + ": " + e.getCause(), e.getCause());
    } finally {
      pool.shutdownNow();
    }
  }

  /** Writes {@code dataset.json} describing the vocabulary and the splits. */
  public void writeDescriptor(Path out, int[] counts) throws IOException {
    StringBuilder sb = new StringBuilder("{\n");
    sb.append("  \"name\": \"ShapesVQA\",\n  \"version\": 1,\n");
    sb.append("  \"seed\": ").append(generator.seed()).append(",\n");
    sb.append("  \"image_size\": ").append(generator.imageSize()).append(",\n");
    sb.append("  \"grid\": ").append(Vocabulary.GRID).append(",\n");
    sb.append("  \"shapes\": ").append(list(Vocabulary.SHAPES)).append(",\n");
    sb.append("  \"colors\": {");
    for (int i = 0; i < Vocabulary.COLORS.size(); i++) {
      int[] c = Vocabulary.COLOR_RGB[i];
      sb.append(i == 0 ? "" : ", ")
          .append(Json.quote(Vocabulary.COLORS.get(i)))
          .append(": [")
          .append(c[0])
          .append(", ")
          .append(c[1])
          .append(", ")
          .append(c[2])
          .append(']');
    }
    sb.append("},\n");
    sb.append("  \"sizes\": ").append(list(Vocabulary.SIZES)).append(",\n");
    sb.append("  \"positions\": ").append(list(Vocabulary.POSITIONS)).append(",\n");
    sb.append("  \"kinds\": ").append(list(Question.KINDS)).append(",\n");
    sb.append("  \"splits\": {");
    for (int i = 0; i < ShapesVqa.SPLITS.size(); i++) {
      sb.append(i == 0 ? "" : ", ")
          .append(Json.quote(ShapesVqa.SPLITS.get(i)))
          .append(": ")
          .append(counts[i]);
    }
    sb.append("}\n}\n");
    Files.writeString(out.resolve("dataset.json"), sb.toString(), StandardCharsets.UTF_8);
  }

  private static String list(List<String> values) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < values.size(); i++) {
      sb.append(i == 0 ? "" : ", ").append(Json.quote(values.get(i)));
    }
    return sb.append(']').toString();
  }

  static String imageFile(Scene scene) {
    return "images/" + scene.imageId().substring(scene.imageId().indexOf('-') + 1) + ".png";
  }

  static String maskFile(Scene scene) {
    return "masks/" + scene.imageId().substring(scene.imageId().indexOf('-') + 1) + ".png";
  }

  private static Scene writeImages(Path dir, Scene scene) {
    try {
      ImageIO.write(toImage(scene), "png", dir.resolve(imageFile(scene)).toFile());
      ImageIO.write(toMask(scene), "png", dir.resolve(maskFile(scene)).toFile());
      return scene;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The scene's pixels as a {@code TYPE_3BYTE_BGR} image. */
  public static BufferedImage toImage(Scene scene) {
    int n = scene.size();
    BufferedImage img = new BufferedImage(n, n, BufferedImage.TYPE_3BYTE_BGR);
    byte[] dst = ((DataBufferByte) img.getRaster().getDataBuffer()).getData();
    byte[] src = scene.rgb();
    for (int p = 0; p < n * n; p++) {
      dst[p * 3] = src[p * 3 + 2];
      dst[p * 3 + 1] = src[p * 3 + 1];
      dst[p * 3 + 2] = src[p * 3];
    }
    return img;
  }

  private static BufferedImage toMask(Scene scene) {
    int n = scene.size();
    BufferedImage img = new BufferedImage(n, n, BufferedImage.TYPE_BYTE_GRAY);
    byte[] dst = ((DataBufferByte) img.getRaster().getDataBuffer()).getData();
    System.arraycopy(scene.mask(), 0, dst, 0, n * n);
    return img;
  }

  private static String sceneJson(Scene scene) {
    StringBuilder sb = new StringBuilder();
    sb.append("{\"image_id\":")
        .append(Json.quote(scene.imageId()))
        .append(",\"image\":")
        .append(Json.quote(imageFile(scene)))
        .append(",\"mask\":")
        .append(Json.quote(maskFile(scene)))
        .append(",\"objects\":[");
    for (int i = 0; i < scene.objects().size(); i++) {
      SceneObject o = scene.objects().get(i);
      sb.append(i == 0 ? "" : ",")
          .append("{\"shape\":")
          .append(Json.quote(o.shapeName()))
          .append(",\"color\":")
          .append(Json.quote(o.colorName()))
          .append(",\"size\":")
          .append(Json.quote(o.sizeName()))
          .append(",\"row\":")
          .append(o.row())
          .append(",\"col\":")
          .append(o.col())
          .append(",\"position\":")
          .append(Json.quote(o.positionName()))
          .append(",\"cx\":")
          .append(Json.number(o.cx()))
          .append(",\"cy\":")
          .append(Json.number(o.cy()))
          .append(",\"radius\":")
          .append(Json.number(o.radius()))
          .append('}');
    }
    sb.append("],\"caption\":").append(Json.quote(scene.caption())).append('}');
    return sb.toString();
  }
}

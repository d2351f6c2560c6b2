package dev.tokenpress.runtime.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes float32 tensors as one {@code .safetensors} file (header padded with spaces to 8 bytes,
 * as the reference implementation does). Used by converters and for bundle side files.
 */
public final class SafetensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final List<String> names = new ArrayList<>();
    private final Map<String, float[]> data = new LinkedHashMap<>();
    private final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** Adds a tensor; the array is not copied and must not change until {@link #write}. */
    public SafetensorsWriter add(String name, float[] values, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != values.length) {
            throw new IllegalArgumentException("tensor " + name + " has " + values.length + " values, shape "
                    + Arrays.toString(shape) + " needs " + n);
        }
        if (data.containsKey(name)) {
            throw new IllegalArgumentException("duplicate tensor name " + name);
        }
        names.add(name);
        data.put(name, values);
        shapes.put(name, shape.clone());
        return this;
    }

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public void write(Path path) {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long off = 0;
        for (String name : names) {
            ObjectNode t = header.putObject(name);
            t.put("dtype", "F32");
            ArrayNode s = t.putArray("shape");
            for (long d : shapes.get(name)) {
                s.add(d);
            }
            long bytes = 4L * data.get(name).length;
            t.putArray("data_offsets").add(off).add(off + bytes);
            off += bytes;
        }
        byte[] hj;
        try {
            hj = JSON.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int padded = (hj.length + 7) / 8 * 8;
        byte[] h = Arrays.copyOf(hj, padded);
        Arrays.fill(h, hj.length, padded, (byte) ' ');
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, padded);
            writeFully(ch, len);
            writeFully(ch, ByteBuffer.wrap(h));
            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (String name : names) {
                float[] v = data.get(name);
                int i = 0;
                while (i < v.length) {
                    int n = Math.min(v.length - i, buf.capacity() / 4);
                    buf.clear();
                    buf.asFloatBuffer().put(v, i, n);
                    buf.limit(n * 4);
                    writeFully(ch, buf);
                    i += n;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path, e);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        b.position(0);
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}

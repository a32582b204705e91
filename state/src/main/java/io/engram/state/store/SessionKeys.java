package io.engram.state.store;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Keys of a store shared by many sessions: {@code u32 length | UTF-8 session id | i64 unit id (big-endian)}. The length
 * prefix makes one session's keys never a prefix of another's ("ab" + id vs "a" + "b..."), and big-endian ids keep a
 * session's units in id order.
 */
public final class SessionKeys {
    private SessionKeys() {}

    public static byte[] prefix(String session) {
        if (session == null || session.isEmpty()) {
            throw new MemoryStoreException("a session id is required");
        }
        byte[] s = session.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(4 + s.length).putInt(s.length).put(s).array();
    }

    public static byte[] unitKey(String session, long unitId) {
        byte[] p = prefix(session);
        return ByteBuffer.allocate(p.length + 8).put(p).putLong(unitId).array();
    }

    /** The session id of a {@link #prefix} key. */
    public static String session(byte[] prefixKey) {
        if (prefixKey.length < 4) {
            throw new MemoryStoreException("malformed session key of " + prefixKey.length + " bytes");
        }
        int n = ByteBuffer.wrap(prefixKey).getInt();
        if (n != prefixKey.length - 4) {
            throw new MemoryStoreException(
                    "malformed session key: length prefix " + n + ", " + (prefixKey.length - 4) + " bytes follow");
        }
        return new String(prefixKey, 4, n, StandardCharsets.UTF_8);
    }

    /** The unit id of a key that starts with {@code prefix}. */
    public static long unitId(byte[] key, int prefixLength) {
        if (key.length != prefixLength + 8) {
            throw new MemoryStoreException("malformed unit key of " + key.length + " bytes");
        }
        return ByteBuffer.wrap(key, prefixLength, 8).getLong();
    }

    public static boolean startsWith(byte[] key, byte[] prefix) {
        if (key.length < prefix.length) {
            return false;
        }
        for (int i = 0; i < prefix.length; i++) {
            if (key[i] != prefix[i]) {
                return false;
            }
        }
        return true;
    }
}

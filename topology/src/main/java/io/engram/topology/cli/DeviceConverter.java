package io.engram.topology.cli;

import io.engram.engine.backend.Backends;
import java.util.Locale;
import picocli.CommandLine;

/** Parses {@code --device cpu|cuda|auto}, in any case. */
final class DeviceConverter implements CommandLine.ITypeConverter<Backends.Device> {
    @Override
    public Backends.Device convert(String value) {
        try {
            return Backends.Device.valueOf(value.strip().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException("'" + value + "' is not a device; use cpu, cuda or auto");
        }
    }
}

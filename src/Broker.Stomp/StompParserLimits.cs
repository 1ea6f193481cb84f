namespace Broker.Stomp;

/// <summary>
/// Bounds the parser enforces before it buffers past them. Defaults follow the broker's:
/// 4 MiB frames, 1,000 headers, 8 KiB header lines.
/// </summary>
public sealed record StompParserLimits
{
    /// <summary>The broker's defaults for a connected session.</summary>
    public static StompParserLimits Default { get; } = new();

    /// <summary>Largest frame, from the first byte of the command to the NUL, in bytes.</summary>
    public int MaxFrameBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>Largest body in bytes.</summary>
    public int MaxBodyBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>Most headers in one frame.</summary>
    public int MaxHeaders { get; init; } = 1000;

    /// <summary>Longest command or header line in bytes, without its EOL.</summary>
    public int MaxHeaderLineBytes { get; init; } = 8 * 1024;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first limit that is not positive.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxFrameBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxBodyBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxHeaders);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxHeaderLineBytes);
    }
}

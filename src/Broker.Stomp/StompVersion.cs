namespace Broker.Stomp;

/// <summary>A STOMP protocol version. The order is the order of preference.</summary>
public enum StompVersion : byte
{
    /// <summary>STOMP 1.0: no header escaping, no heart-beats, no NACK.</summary>
    V1_0 = 10,

    /// <summary>STOMP 1.1: escapes <c>\n \c \\</c>.</summary>
    V1_1 = 11,

    /// <summary>STOMP 1.2: escapes <c>\r \n \c \\</c>, CRLF line ends.</summary>
    V1_2 = 12,
}

/// <summary>Version names as they appear in <c>accept-version</c> and <c>version</c> headers.</summary>
public static class StompVersions
{
    /// <summary>Every version this codec speaks, oldest first.</summary>
    public static IReadOnlyList<StompVersion> All { get; } = [StompVersion.V1_0, StompVersion.V1_1, StompVersion.V1_2];

    /// <summary>The wire name: "1.0", "1.1" or "1.2".</summary>
    public static string ToHeaderValue(this StompVersion version) => version switch
    {
        StompVersion.V1_0 => "1.0",
        StompVersion.V1_1 => "1.1",
        StompVersion.V1_2 => "1.2",
        _ => throw new ArgumentOutOfRangeException(nameof(version)),
    };

    /// <summary>Parses "1.0", "1.1" or "1.2"; anything else is not a version this codec knows.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out StompVersion version)
    {
        switch (text)
        {
            case "1.0": version = StompVersion.V1_0; return true;
            case "1.1": version = StompVersion.V1_1; return true;
            case "1.2": version = StompVersion.V1_2; return true;
            default: version = default; return false;
        }
    }
}

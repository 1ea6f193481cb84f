using System.Buffers.Text;

namespace Broker.Stomp;

/// <summary>Version and heart-beat negotiation, exactly as STOMP 1.2 "Protocol Negotiation" and "Heart-beating" define them.</summary>
public static class StompNegotiation
{
    /// <summary>
    /// The highest version in both <paramref name="acceptVersion"/> (a comma-separated list; null when the header is
    /// absent, which means the client speaks only 1.0) and <paramref name="supported"/>.
    /// </summary>
    /// <exception cref="StompProtocolException">No version in common; the message lists the server's versions.</exception>
    public static StompVersion NegotiateVersion(string? acceptVersion, IReadOnlyCollection<StompVersion> supported)
    {
        ArgumentNullException.ThrowIfNull(supported);
        StompVersion? best = null;
        if (acceptVersion is null)
        {
            if (supported.Contains(StompVersion.V1_0))
            {
                best = StompVersion.V1_0;
            }
        }
        else
        {
            foreach (var range in acceptVersion.AsSpan().Split(','))
            {
                if (StompVersions.TryParse(acceptVersion.AsSpan(range), out var offered)
                    && supported.Contains(offered) && (best is null || offered > best))
                {
                    best = offered;
                }
            }
        }

        if (best is null)
        {
            StompProtocolException.Throw(
                StompErrorKind.UnsupportedVersion,
                $"Supported protocol versions are {FormatSupported(supported)}");
        }

        return best.Value;
    }

    /// <summary>The server's versions as an ERROR frame's <c>version</c> header lists them: "1.0,1.1,1.2".</summary>
    public static string FormatSupported(IReadOnlyCollection<StompVersion> supported) =>
        string.Join(',', supported.Order().Select(v => v.ToHeaderValue()));
}

/// <summary>
/// A <c>heart-beat</c> header: the smallest interval at which its sender can send heart-beats, and the interval at which
/// it wants to receive them, in milliseconds; 0 means "cannot" / "does not want".
/// </summary>
/// <param name="SendMs">cx (or sx): the sender can send a heart-beat at least this often.</param>
/// <param name="ReceiveMs">cy (or sy): the sender wants to receive a heart-beat this often.</param>
public readonly record struct HeartBeat(int SendMs, int ReceiveMs)
{
    /// <summary>0,0: no heart-beats either way, which is also what a missing header means.</summary>
    public static HeartBeat None => default;

    /// <summary>Parses "cx,cy"; a missing header (empty input) is <see cref="None"/>.</summary>
    /// <exception cref="StompProtocolException">Not two non-negative integers separated by one comma.</exception>
    public static HeartBeat Parse(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty)
        {
            return None;
        }

        var comma = value.IndexOf((byte)',');
        if (comma < 0 || !TryParseInterval(value[..comma], out var send) || !TryParseInterval(value[(comma + 1)..], out var receive))
        {
            StompProtocolException.Throw(
                StompErrorKind.InvalidHeartBeat,
                "invalid heart-beat header: expected two non-negative integers separated by a comma, such as '10000,10000'");
            return default;
        }

        return new HeartBeat(send, receive);
    }

    /// <summary>
    /// The intervals both sides use, from this side's header and the peer's:
    /// outgoing = 0 if this.SendMs = 0 or peer.ReceiveMs = 0, else max of the two; incoming likewise the other way.
    /// </summary>
    public NegotiatedHeartBeat Negotiate(HeartBeat peer) => new(
        OutgoingMs: SendMs == 0 || peer.ReceiveMs == 0 ? 0 : Math.Max(SendMs, peer.ReceiveMs),
        IncomingMs: peer.SendMs == 0 || ReceiveMs == 0 ? 0 : Math.Max(peer.SendMs, ReceiveMs));

    /// <summary>The header value: "cx,cy".</summary>
    public override string ToString() => $"{SendMs},{ReceiveMs}";

    private static bool TryParseInterval(ReadOnlySpan<byte> text, out int value)
    {
        value = 0;
        if (text.IsEmpty || text[0] is < (byte)'0' or > (byte)'9')
        {
            return false;
        }

        return Utf8Parser.TryParse(text, out value, out var consumed) && consumed == text.Length && value >= 0;
    }
}

/// <summary>The negotiated heart-beat intervals in milliseconds, as seen from one side; 0 is off.</summary>
/// <param name="OutgoingMs">This side sends something at least this often.</param>
/// <param name="IncomingMs">This side expects something from the peer at least this often.</param>
public readonly record struct NegotiatedHeartBeat(int OutgoingMs, int IncomingMs);

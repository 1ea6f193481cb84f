using System.Text;

namespace Broker.Stomp.Tests;

/// <summary>Version and heart-beat negotiation (STOMP 1.2 "Protocol Negotiation" and "Heart-beating").</summary>
public sealed class NegotiationTests
{
    private static readonly IReadOnlyCollection<StompVersion> All = StompVersions.All;

    [Fact]
    public void Missing_accept_version_means_1_0()
    {
        Assert.Equal(StompVersion.V1_0, StompNegotiation.NegotiateVersion(null, All));
    }

    [Fact]
    public void Missing_accept_version_fails_when_the_server_does_not_speak_1_0()
    {
        var error = Assert.Throws<StompProtocolException>(() => StompNegotiation.NegotiateVersion(null, [StompVersion.V1_1, StompVersion.V1_2]));

        Assert.Equal(StompErrorKind.UnsupportedVersion, error.Kind);
        Assert.Equal("Supported protocol versions are 1.1,1.2", error.Message);
    }

    [Theory]
    [InlineData("1.0,1.1,1.2", StompVersion.V1_2)]
    [InlineData("1.2,1.1,1.0", StompVersion.V1_2)]
    [InlineData("1.1", StompVersion.V1_1)]
    [InlineData("1.0", StompVersion.V1_0)]
    [InlineData("1.2", StompVersion.V1_2)]
    [InlineData("1.0,1.1", StompVersion.V1_1)]
    [InlineData("1.0,1.1,2.0", StompVersion.V1_1)] // the specification's example
    [InlineData("2.0,1.1,x,,1.0", StompVersion.V1_1)]
    [InlineData("1.1,1.1", StompVersion.V1_1)]
    public void Highest_common_version_wins_and_unknown_tokens_are_ignored(string acceptVersion, StompVersion expected)
    {
        Assert.Equal(expected, StompNegotiation.NegotiateVersion(acceptVersion, All));
    }

    [Fact]
    public void Only_versions_the_server_supports_count()
    {
        Assert.Equal(StompVersion.V1_1, StompNegotiation.NegotiateVersion("1.0,1.1,1.2", [StompVersion.V1_0, StompVersion.V1_1]));
    }

    [Theory]
    [InlineData("2.0")]
    [InlineData("2.0,2.1")]
    [InlineData("")]
    [InlineData("1.3")]
    [InlineData("1.2.0")]
    [InlineData("v12.stomp")]
    public void No_common_version_lists_the_servers_versions(string acceptVersion)
    {
        var error = Assert.Throws<StompProtocolException>(() => StompNegotiation.NegotiateVersion(acceptVersion, All));

        Assert.Equal(StompErrorKind.UnsupportedVersion, error.Kind);
        Assert.Equal("Supported protocol versions are 1.0,1.1,1.2", error.Message);
        Assert.Contains("1.0,1.1,1.2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Supported_versions_are_listed_in_order_for_the_version_header()
    {
        Assert.Equal("1.0,1.1,1.2", StompNegotiation.FormatSupported([StompVersion.V1_2, StompVersion.V1_0, StompVersion.V1_1]));
        Assert.Equal("1.2", StompNegotiation.FormatSupported([StompVersion.V1_2]));
    }

    [Theory]
    [InlineData("1.0", StompVersion.V1_0)]
    [InlineData("1.1", StompVersion.V1_1)]
    [InlineData("1.2", StompVersion.V1_2)]
    public void Version_names_round_trip(string text, StompVersion version)
    {
        Assert.True(StompVersions.TryParse(text, out var parsed));
        Assert.Equal(version, parsed);
        Assert.Equal(text, version.ToHeaderValue());
    }

    [Theory]
    [InlineData("0,0", 0, 0)]
    [InlineData("10000,5000", 10000, 5000)]
    [InlineData("0,1000", 0, 1000)]
    [InlineData("2147483647,1", int.MaxValue, 1)]
    [InlineData("007,010", 7, 10)]
    public void Heart_beat_header_parses(string value, int send, int receive)
    {
        var heartBeat = HeartBeat.Parse(Encoding.ASCII.GetBytes(value));

        Assert.Equal(new HeartBeat(send, receive), heartBeat);
        Assert.Equal(send, heartBeat.SendMs);
        Assert.Equal(receive, heartBeat.ReceiveMs);
    }

    [Fact]
    public void Missing_heart_beat_header_is_none()
    {
        Assert.Equal(HeartBeat.None, HeartBeat.Parse(ReadOnlySpan<byte>.Empty));
        Assert.Equal(new HeartBeat(0, 0), HeartBeat.None);
    }

    [Theory]
    [InlineData("10")]
    [InlineData("a,b")]
    [InlineData("-1,0")]
    [InlineData("0,-1")]
    [InlineData("1,2,3")]
    [InlineData(",")]
    [InlineData("1,")]
    [InlineData(",1")]
    [InlineData(" 1,2")]
    [InlineData("1, 2")]
    [InlineData("1,2 ")]
    [InlineData("+1,2")]
    [InlineData("1.5,2")]
    [InlineData("2147483648,0")]
    [InlineData("99999999999999999999,0")]
    public void Invalid_heart_beat_header(string value)
    {
        var error = Assert.Throws<StompProtocolException>(() => HeartBeat.Parse(Encoding.ASCII.GetBytes(value)));

        Assert.Equal(StompErrorKind.InvalidHeartBeat, error.Kind);
        Assert.Equal(
            "invalid heart-beat header: expected two non-negative integers separated by a comma, such as '10000,10000'",
            error.Message);
    }

    [Theory]
    // cx, cy (client CONNECT), sx, sy (server CONNECTED), client→server, server→client
    [InlineData(0, 0, 0, 0, 0, 0)]
    [InlineData(0, 1000, 5000, 0, 0, 5000)]
    [InlineData(1000, 0, 0, 5000, 5000, 0)]
    [InlineData(1000, 2000, 3000, 4000, 4000, 3000)]
    [InlineData(5000, 100, 100, 5000, 5000, 100)]
    [InlineData(10000, 10000, 10000, 10000, 10000, 10000)]
    [InlineData(1000, 1000, 0, 0, 0, 0)]
    [InlineData(0, 0, 1000, 1000, 0, 0)]
    [InlineData(1, 2147483647, 2147483647, 1, 1, 2147483647)]
    public void Heart_beat_negotiation_follows_the_spec_formula_from_both_sides(int cx, int cy, int sx, int sy, int clientToServer, int serverToClient)
    {
        var client = new HeartBeat(cx, cy);
        var server = new HeartBeat(sx, sy);

        // Spec: client→server is 0 if cx = 0 or sy = 0, else max(cx, sy); server→client likewise with sx and cy.
        Assert.Equal(cx == 0 || sy == 0 ? 0 : Math.Max(cx, sy), clientToServer);
        Assert.Equal(sx == 0 || cy == 0 ? 0 : Math.Max(sx, cy), serverToClient);

        Assert.Equal(new NegotiatedHeartBeat(OutgoingMs: serverToClient, IncomingMs: clientToServer), server.Negotiate(client));
        Assert.Equal(new NegotiatedHeartBeat(OutgoingMs: clientToServer, IncomingMs: serverToClient), client.Negotiate(server));
    }

    [Fact]
    public void Heart_beat_header_value_round_trips()
    {
        var heartBeat = new HeartBeat(10000, 5000);

        Assert.Equal("10000,5000", heartBeat.ToString());
        Assert.Equal(heartBeat, HeartBeat.Parse(Encoding.ASCII.GetBytes(heartBeat.ToString())));
    }
}

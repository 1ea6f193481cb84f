using System.Net;
using Broker.Load;

namespace Broker.Tests.LoadTool;

/// <summary>stompload's command line: loopback targets only, every option checked, defaults that make a sensible run.</summary>
public sealed class LoadOptionsTests
{
    [Fact]
    public void Parse_with_no_options_gives_sane_defaults()
    {
        var options = LoadOptions.Parse([]);

        Assert.Equal(ScenarioKind.P2p, options.Scenario);
        Assert.Equal(new Uri("tcp://127.0.0.1:61613"), options.Url);
        Assert.False(options.IsWebSocket);
        Assert.Equal(("guest", "guest", "/"), (options.Login, options.Passcode, options.Host));
        Assert.Null(options.Destination);
        Assert.Equal((1, 1, 10), (options.Producers, options.Consumers, options.Subscribers));
        Assert.Equal(100, options.BodyBytes);
        Assert.Equal((10.0, 2.0, 10.0), (options.DurationSeconds, options.WarmupSeconds, options.DrainTimeoutSeconds));
        Assert.Equal((100, 4, 10_000), (options.ReceiptEvery, options.ReceiptsOutstanding, options.Window));
        Assert.Equal(1_000, options.Rate);
        Assert.Equal((10_000, 64), (options.Connections, options.ConnectConcurrency));
        Assert.Null(options.BrokerPid);
        Assert.Equal(1, options.SourceAddresses);
        Assert.Equal(IPAddress.Loopback, options.SourceAddress(7));
        Assert.False(options.Sink);
        Assert.False(options.Quiet);
        Assert.Null(options.JsonPath);
        Assert.Equal("127.0.0.1:61613", options.BrokerName);
        Assert.Equal("p2p 1→1, 100 B", options.CaseName);
    }

    [Fact]
    public void Parse_reads_every_option()
    {
        var options = LoadOptions.Parse(
        [
            "--scenario", "fanout", "--url", "ws://localhost:15674/ws", "--login", "u", "--passcode", "p", "--host", "vh",
            "--destination", "/topic/x", "--producers", "3", "--consumers", "4", "--subscribers", "5", "--body", "2048",
            "--duration", "1.5", "--warmup", "0", "--drain-timeout", "0.5", "--receipt-every", "7", "--receipts-outstanding", "2",
            "--window", "99", "--rate", "250", "--connections", "12", "--connect-concurrency", "3", "--pid", "42",
            "--source-addresses", "3", "--sink", "--broker", "rabbitmq", "--label", "L", "--json", "-", "--quiet",
        ]);

        Assert.Equal(ScenarioKind.Fanout, options.Scenario);
        Assert.True(options.IsWebSocket);
        Assert.Equal("/ws", options.Url.AbsolutePath);
        Assert.Equal(15674, options.Url.Port);
        Assert.Equal(("u", "p", "vh", "/topic/x"), (options.Login, options.Passcode, options.Host, options.Destination));
        Assert.Equal((3, 4, 5, 2048), (options.Producers, options.Consumers, options.Subscribers, options.BodyBytes));
        Assert.Equal((1.5, 0.0, 0.5), (options.DurationSeconds, options.WarmupSeconds, options.DrainTimeoutSeconds));
        Assert.Equal((7, 2, 99, 250), (options.ReceiptEvery, options.ReceiptsOutstanding, options.Window, options.Rate));
        Assert.Equal((12, 3, 42, 3), (options.Connections, options.ConnectConcurrency, options.BrokerPid, options.SourceAddresses));
        Assert.True(options.Sink && options.Quiet);
        Assert.Equal(("rabbitmq", "L", "-"), (options.BrokerName, options.Label, options.JsonPath));
        Assert.Equal("fan-out 1→5, 2 KiB", options.CaseName);
        // Connections take their source addresses in turn: 127.0.0.1, .2, .3, .1, …
        Assert.Equal(
            ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"],
            Enumerable.Range(0, 4).Select(i => options.SourceAddress(i).ToString()));
    }

    [Theory]
    [InlineData("tcp://10.1.2.3:61613")]
    [InlineData("ws://example.com:80/ws")]
    [InlineData("tcp://192.168.0.1:61613")]
    [InlineData("ws://0.0.0.0:15674/ws")]
    [InlineData("tcp://8.8.8.8:61613")]
    [InlineData("tcp://localhost.example.com:61613")]
    public void Parse_refuses_a_url_that_is_not_loopback(string url)
    {
        var refused = Assert.Throws<ArgumentException>(() => LoadOptions.Parse(["--url", url]));
        Assert.Contains("loopback", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080/ws")] // not a STOMP scheme
    [InlineData("wss://127.0.0.1:15673/ws")] // TLS is not spoken
    [InlineData("tcp://127.0.0.1")] // no port
    [InlineData("127.0.0.1:61613")]
    [InlineData("not a url")]
    public void Parse_refuses_a_url_it_cannot_use(string url)
    {
        Assert.Throws<ArgumentException>(() => LoadOptions.Parse(["--url", url]));
    }

    [Theory]
    [InlineData("tcp://127.0.0.1:61613")]
    [InlineData("tcp://127.1.2.3:61613")]
    [InlineData("tcp://localhost:61613")]
    [InlineData("ws://127.0.0.1:15674/ws")]
    public void Parse_accepts_loopback_urls(string url)
    {
        Assert.Equal(new Uri(url), LoadOptions.Parse(["--url", url]).Url);
    }

    [Theory]
    [InlineData("--unknown")]
    [InlineData("--producers", "0")]
    [InlineData("--consumers", "-1")]
    [InlineData("--duration", "0")]
    [InlineData("--warmup", "-1")]
    [InlineData("--rate", "fast")]
    [InlineData("--body", "1.5")]
    [InlineData("--scenario", "burst")]
    [InlineData("--source-addresses", "255")]
    [InlineData("--url")] // a value is missing
    [InlineData("run")] // the command belongs before the options
    public void Parse_refuses_unknown_options_and_bad_values(params string[] args)
    {
        var refused = Assert.Throws<ArgumentException>(() => LoadOptions.Parse(args));
        Assert.Contains(args[0], refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_command_line_exits_with_2_for_bad_usage_before_connecting_anywhere()
    {
        Assert.Equal(2, await StompLoad.MainAsync("run", "--url", "tcp://10.1.2.3:61613"));
        Assert.Equal(2, await StompLoad.MainAsync("run", "--nonsense"));
        Assert.Equal(2, await StompLoad.MainAsync("frobnicate"));
    }
}

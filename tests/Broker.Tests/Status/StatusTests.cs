using System.Net;
using System.Text.Json;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Status;

/// <summary>
/// The node snapshot: <c>GET /api/status</c>, the JSON MESSAGE published to <c>/topic/stompbroker.status</c> every
/// second, and the pages served beside them (status page, chat and dashboard demos, stomp.js vendored at build time).
/// </summary>
public sealed class StatusTests
{
    private const string StatusTopic = "/topic/stompbroker.status";
    private static readonly HttpClient s_http = new() { Timeout = TimeSpan.FromSeconds(5) };

    [Fact]
    public async Task Api_status_names_the_node_and_counts_connections_as_clients_come_and_go()
    {
        await using var server = await BrokerServer.StartAsync();
        using (var first = await GetStatusAsync(server))
        {
            var root = first.RootElement;
            Assert.Equal(NodeId(server), root.GetProperty("node").GetString());
            Assert.Equal(0, root.GetProperty("connections").GetInt32());
            Assert.Equal(0, root.GetProperty("sessions").GetInt32());
            Assert.Equal("/ws", root.GetProperty("webSocketPath").GetString());
            Assert.Equal(1.0, root.GetProperty("intervalSeconds").GetDouble());
            var backend = Assert.Single(root.GetProperty("backends").EnumerateArray());
            Assert.Equal("/", backend.GetProperty("virtualHost").GetString());
            Assert.Equal("in-memory", backend.GetProperty("kind").GetString());
            Assert.Equal("up", backend.GetProperty("state").GetString());
            var process = root.GetProperty("process");
            Assert.True(process.GetProperty("workingSetBytes").GetInt64() > 0);
            Assert.True(process.GetProperty("gcHeapBytes").GetInt64() > 0);
            Assert.True(process.GetProperty("threads").GetInt32() > 0);
        }

        await using (var tcp = await server.ConnectClientAsync(Transport.Tcp))
        {
            await WaitForStatusAsync(server, s => Int(s, "connections") == 1 && Int(s, "sessions") == 1, "1 connection after a TCP client connected");
            await using var webSocket = await server.ConnectClientAsync(Transport.WebSocket);
            await WaitForStatusAsync(server, s => Int(s, "connections") == 2 && Int(s, "sessions") == 2, "2 connections after a WebSocket client connected too");
        }

        await WaitForStatusAsync(server, s => Int(s, "connections") == 0 && Int(s, "sessions") == 0, "0 connections after both left");
    }

    [Fact]
    public async Task A_json_snapshot_arrives_on_the_status_topic_every_second()
    {
        await using var server = await BrokerServer.StartAsync();
        await using var client = await server.ConnectClientAsync(Transport.WebSocket);
        await client.SubscribeAsync(StatusTopic, "status");

        var first = await client.ReceiveAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(StompCommand.Message, first.Command);
        Assert.Equal(StatusTopic, first["destination"]);
        Assert.Equal("status", first["subscription"]);
        Assert.Equal("application/json", first["content-type"]);
        Assert.Equal(NodeId(server), first["stompbroker-node"]);
        using var json = JsonDocument.Parse(first.Body);
        Assert.Equal(NodeId(server), json.RootElement.GetProperty("node").GetString());
        Assert.Equal(1, json.RootElement.GetProperty("connections").GetInt32());

        // The first one may have been taken just before the SUBSCRIBE; the next one surely shows it.
        var second = await client.ReceiveAsync(TimeSpan.FromSeconds(3));
        using var next = JsonDocument.Parse(second.Body);
        Assert.True(
            next.RootElement.GetProperty("timestamp").GetDateTimeOffset() > json.RootElement.GetProperty("timestamp").GetDateTimeOffset(),
            "the next snapshot is a new one");
        Assert.Equal(1, next.RootElement.GetProperty("subscriptions").GetInt32()); // this one
        Assert.Contains(next.RootElement.GetProperty("destinations").EnumerateArray(), d =>
            d.GetProperty("destination").GetString() == StatusTopic && d.GetProperty("subscribers").GetInt32() == 1);
    }

    [Fact]
    public async Task Destinations_show_their_publish_counts_subscribers_and_queue_depth()
    {
        await using var server = await BrokerServer.StartAsync();
        var topic = Unique.Topic("status");
        var queue = Unique.Queue("status");
        await using var subscriber = await server.ConnectClientAsync();
        await subscriber.SubscribeAsync(topic, "s1");
        await using var sender = await server.ConnectClientAsync();
        for (var i = 0; i < 5; i++)
        {
            await sender.SendAsync(topic, $"m{i}", receipt: true);
        }

        for (var i = 0; i < 3; i++)
        {
            await sender.SendAsync(queue, $"job{i}", receipt: true);
        }

        await WaitForStatusAsync(
            server,
            s => Int(s, "subscriptions") == 1
                && HasDestination(s, topic, "topic", published: 5, subscribers: 1, depth: null)
                && HasDestination(s, queue, "queue", published: 3, subscribers: 0, depth: 3),
            $"{topic} with 5 published and 1 subscriber, {queue} with depth 3");
        using var status = await GetStatusAsync(server);
        Assert.True(status.RootElement.GetProperty("published").GetInt64() >= 8);
    }

    [Fact]
    public async Task The_pages_are_served_with_stomp_js_vendored_and_a_content_security_policy()
    {
        await using var server = await BrokerServer.StartAsync();
        var origin = $"http://127.0.0.1:{server.WebSocketPort}";

        using var index = await s_http.GetAsync(new Uri(origin + "/"));
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Equal("text/html", index.Content.Headers.ContentType?.MediaType);
        Assert.Contains("vendor/stomp.umd.min.js", await index.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var policy = string.Join(' ', index.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("connect-src 'self'", policy, StringComparison.Ordinal);
        Assert.Contains("script-src 'self'", policy, StringComparison.Ordinal);

        using var stompJs = await s_http.GetAsync(new Uri(origin + "/vendor/stomp.umd.min.js"));
        Assert.Equal(HttpStatusCode.OK, stompJs.StatusCode);
        var script = await stompJs.Content.ReadAsStringAsync();
        Assert.True(script.Length > 10_000, $"the vendored stomp.js is {script.Length} characters");
        Assert.Contains("StompJs", script, StringComparison.Ordinal);

        foreach (var page in new[] { "/chat.html", "/dashboard.html", "/js/status.js", "/js/chat.js", "/js/dashboard.js", "/css/site.css" })
        {
            using var response = await s_http.GetAsync(new Uri(origin + page));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{page}: {(int)response.StatusCode}");
        }
    }

    [Fact]
    public async Task With_status_off_there_are_no_pages_no_api_and_no_snapshots()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Status:Enabled=false");
        foreach (var path in new[] { "/", "/api/status", "/chat.html" })
        {
            using var response = await s_http.GetAsync(new Uri($"http://127.0.0.1:{server.WebSocketPort}{path}"));
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        await using var client = await server.ConnectClientAsync();
        await client.SubscribeAsync(StatusTopic, "status");
        await client.ExpectNothingAsync(1500);
    }

    internal static string NodeId(BrokerServer server) => $"{Environment.MachineName}:{Environment.ProcessId}:{server.WebSocketPort}";

    private static async Task<JsonDocument> GetStatusAsync(BrokerServer server)
    {
        using var response = await s_http.GetAsync(new Uri($"http://127.0.0.1:{server.WebSocketPort}/api/status"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync());
    }

    // Snapshots are taken once a second: poll until one shows what is expected.
    private static async Task WaitForStatusAsync(BrokerServer server, Func<JsonElement, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(6);
        string last;
        do
        {
            using var status = await GetStatusAsync(server);
            if (condition(status.RootElement))
            {
                return;
            }

            last = status.RootElement.GetRawText();
            await Task.Delay(100);
        }
        while (DateTime.UtcNow < deadline);

        Assert.Fail($"timed out waiting for /api/status to show {what}; last: {last}");
    }

    private static int Int(JsonElement status, string name) => status.GetProperty(name).GetInt32();

    private static bool HasDestination(JsonElement status, string destination, string kind, long published, int subscribers, int? depth) =>
        status.GetProperty("destinations").EnumerateArray().Any(d =>
            d.GetProperty("destination").GetString() == destination
            && d.GetProperty("virtualHost").GetString() == "/"
            && d.GetProperty("kind").GetString() == kind
            && d.GetProperty("published").GetInt64() == published
            && d.GetProperty("subscribers").GetInt32() == subscribers
            && (d.GetProperty("depth").ValueKind == JsonValueKind.Null ? null : d.GetProperty("depth").GetInt32()) == depth);
}

using Broker.Tests.Infrastructure;

namespace Broker.Tests.Browser;

/// <summary>
/// The broker's own web pages in a real browser (Debian's Chromium, headless, driven by playwright-core from
/// tests/interop/browser-scenarios.mjs): the chat demo between two pages, the status page's live connection count, the
/// dashboard demo's live charts. Each saves screenshots under artifacts/test-results/screenshots for people to look at.
/// Each test has a broker of its own, so connection counts are exactly the test's.
/// </summary>
public sealed class BrowserTests
{
    [Fact]
    public async Task Two_chat_pages_in_one_room_see_joins_typing_messages_and_leaves_of_each_other()
    {
        await RunAsync("chat", "chat-alice.png", "chat-bob.png");
    }

    [Fact]
    public async Task The_status_page_connection_count_goes_up_when_a_client_connects_and_down_when_it_leaves()
    {
        await RunAsync("status", "status.png");
    }

    [Fact]
    public async Task The_dashboard_demo_draws_the_live_metrics_stream_and_its_demo_publisher()
    {
        await RunAsync("dashboard", "dashboard.png");
    }

    private static async Task RunAsync(string scenario, params string[] screenshots)
    {
        var folder = ExternalClient.ScreenshotsFolder;
        Directory.CreateDirectory(folder);
        foreach (var name in screenshots)
        {
            File.Delete(Path.Combine(folder, name)); // a file from an earlier run proves nothing
        }

        await using (var server = await BrokerServer.StartAsync())
        {
            await ExternalClient.RunBrowserAsync(new Uri($"http://127.0.0.1:{server.WebSocketPort}/"), scenario, folder);
        }

        foreach (var name in screenshots)
        {
            var path = Path.Combine(folder, name);
            Assert.True(File.Exists(path), $"{path} was not saved");
            var bytes = await File.ReadAllBytesAsync(path);
            Assert.True(bytes.Length > 1000, $"{path} is only {bytes.Length} bytes");
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
        }
    }
}

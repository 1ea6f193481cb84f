using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>
/// The README's sample is this file's "README sample" region, character for character, and it runs against the broker:
/// the sample compiles, works, and cannot drift from the README.
/// </summary>
public sealed class ReadmeSampleTests
{
    #region README sample
    // Publishes an order and consumes it, e.g. await PublishAndConsumeAsync(new Uri("tcp://localhost:61613"));
    static async Task PublishAndConsumeAsync(Uri broker)
    {
        await using var client = await StompClient.ConnectAsync(new StompClientOptions { Uri = broker });
        await using var orders = await client.SubscribeAsync("/queue/orders", new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });
        await client.SendJsonAsync("/queue/orders", new { Id = 42 }, new StompSendOptions { WaitForReceipt = true });
        await foreach (var message in orders)
        {
            Console.WriteLine(message.BodyText);
            await message.AckAsync();
            break;
        }
    }
    #endregion

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task The_readme_sample_publishes_consumes_and_acks(Transport transport)
    {
        await using var server = await BrokerServer.StartAsync(); // its own broker: the sample's queue name is fixed
        var printed = new StringWriter();
        var console = Console.Out;
        Console.SetOut(TextWriter.Synchronized(printed));
        try
        {
            await PublishAndConsumeAsync(Clients.UriOf(server, transport)).WaitAsync(Clients.Deadline);
        }
        finally
        {
            Console.SetOut(console);
        }

        Assert.Contains("{\"id\":42}", printed.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, server.QueueDepth("/queue/orders")); // acked: the disconnect gave nothing back to the queue
    }

    [Fact]
    public void The_readme_shows_exactly_the_tested_sample()
    {
        var root = ExternalClient.RepositoryRoot;
        var readme = File.ReadAllText(Path.Combine(root, "src", "Broker.Client", "README.md")).ReplaceLineEndings("\n");
        var start = readme.IndexOf("```csharp\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "the README has no ```csharp block");
        start += "```csharp\n".Length;
        var block = readme[start..readme.IndexOf("\n```", start, StringComparison.Ordinal)];

        var source = File.ReadAllText(Path.Combine(root, "tests", "Broker.Client.Tests", "ReadmeSampleTests.cs")).ReplaceLineEndings("\n");
        var regionStart = source.IndexOf("#region README sample\n", StringComparison.Ordinal) + "#region README sample\n".Length;
        var region = source[regionStart..source.IndexOf("    #endregion", regionStart, StringComparison.Ordinal)];
        var sample = string.Join('\n', region.TrimEnd('\n').Split('\n').Select(line => line.StartsWith("    ", StringComparison.Ordinal) ? line[4..] : line));

        Assert.Equal(block, sample);
    }
}

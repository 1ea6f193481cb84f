using System.Diagnostics;
using System.Text;
using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>Request/reply over reply-to temporary queues, with a timeout.</summary>
public sealed class RequestReplyTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp, Transport.WebSocket)]
    [InlineData(Transport.WebSocket, Transport.Tcp)]
    public async Task A_request_gets_the_reply_with_its_correlation_id(Transport requesterTransport, Transport responderTransport)
    {
        await using var responder = await Clients.ConnectAsync(Server, responderTransport);
        await using var requester = await Clients.ConnectAsync(Server, requesterTransport);
        var service = Unique.Queue("service");
        await using var serving = await responder.SubscribeAsync(service, async (request, ct) =>
        {
            var reply = Encoding.UTF8.GetBytes(request.BodyText.ToUpperInvariant());
            await responder.ReplyAsync(request, reply, new StompSendOptions { Headers = new Dictionary<string, string> { ["x-served-by"] = "responder" } }, ct);
        });

        var answers = await Task.WhenAll(Enumerable.Range(0, 5).Select(i =>
            requester.RequestAsync(service, Encoding.UTF8.GetBytes($"ping {i}"), Clients.Deadline)));

        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"PING {i}"), answers.Select(a => a.BodyText));
        Assert.All(answers, a => Assert.Equal("responder", a.GetHeader("x-served-by")));
        Assert.Equal(5, answers.Select(a => a.CorrelationId).Distinct().Count());
        Assert.All(answers, a => Assert.Equal(32, a.CorrelationId?.Length));
    }

    [Fact]
    public async Task The_request_carries_reply_to_and_correlation_id()
    {
        await using var requester = await Clients.ConnectAsync(Server, Transport.Tcp);
        await using var observer = await Clients.ConnectAsync(Server, Transport.Tcp);
        var service = Unique.Queue("observed");
        await using var subscription = await observer.SubscribeAsync(service);

        var pending = requester.RequestAsync(service, "q"u8.ToArray(), TimeSpan.FromSeconds(30), new StompSendOptions { ContentType = "text/plain" });
        var request = await subscription.NextAsync();

        Assert.StartsWith("/reply-queue/", request.ReplyTo, StringComparison.Ordinal); // the broker's name for the requester's temp queue
        Assert.Equal(32, request.CorrelationId?.Length);
        Assert.Equal("text/plain", request.ContentType);
        await observer.ReplyAsync(request, "a"u8.ToArray());
        Assert.Equal("a", (await pending.WaitAsync(Clients.Deadline)).BodyText);
    }

    [Fact]
    public async Task A_request_nobody_answers_times_out()
    {
        await using var requester = await Clients.ConnectAsync(Server, Transport.Tcp);
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<TimeoutException>(() => requester.RequestAsync(Unique.Queue("nobody"), "hello?"u8.ToArray(), TimeSpan.FromMilliseconds(300)));

        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
        Assert.Contains("no reply", error.Message, StringComparison.Ordinal);
        Assert.Equal(StompConnectionState.Connected, requester.State);
    }

    [Fact]
    public async Task A_late_reply_after_a_timeout_is_ignored_and_later_requests_still_work()
    {
        await using var requester = await Clients.ConnectAsync(Server, Transport.Tcp);
        await using var responder = await Clients.ConnectAsync(Server, Transport.Tcp);
        var service = Unique.Queue("slow");
        await using var requests = await responder.SubscribeAsync(service);

        await Assert.ThrowsAsync<TimeoutException>(() => requester.RequestAsync(service, "first"u8.ToArray(), TimeSpan.FromMilliseconds(200)));
        await responder.ReplyAsync(await requests.NextAsync(), "too late"u8.ToArray(), Clients.Receipted);

        var second = requester.RequestAsync(service, "second"u8.ToArray(), Clients.Deadline);
        var request = await requests.NextAsync();
        Assert.Equal("second", request.BodyText);
        await responder.ReplyAsync(request, "on time"u8.ToArray());
        Assert.Equal("on time", (await second).BodyText);
    }

    [Fact]
    public async Task Replying_to_a_message_without_reply_to_is_refused()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var queue = Unique.Queue("plain");
        await using var subscription = await client.SubscribeAsync(queue);
        await client.SendAsync(queue, "no reply-to");

        var message = await subscription.NextAsync();
        await Assert.ThrowsAsync<ArgumentException>(async () => await client.ReplyAsync(message, "x"u8.ToArray()));
    }
}

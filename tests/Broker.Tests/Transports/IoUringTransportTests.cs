using System.Globalization;
using System.Security.Cryptography;
using Broker.Stomp;
using Broker.Tests.Hardening;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Transports;

/// <summary>
/// The io_uring transport (<c>Broker:Transport=IoUring</c>) on real loopback sockets: its connections are not file
/// descriptors of the process, a full ring table makes a connection wait rather than fail, and everything a client sees
/// (large frames both ways, errors, a peer that reads nothing, a stop) is what the socket transport gives. The rest of
/// the broker's suite runs on it too (tests/run.sh, second pass). Alone (<see cref="RunAloneGroup"/>): one test
/// counts the process's open files, which other tests' sockets would move.
/// </summary>
[Collection(RunAloneGroup.Name)]
public sealed class IoUringTransportTests
{
    private const string IoUring = "Broker:Transport=IoUring";

    [Fact]
    public async Task Its_connections_are_not_file_descriptors_of_the_process()
    {
        await using var server = await BrokerServer.StartAsync(IoUring);
        await using (var warm = await server.ConnectClientAsync())
        {
            // The first client socket starts the runtime's own socket engine (an epoll and a pipe): count after it.
        }

        const int Connections = 300;
        var before = OpenFiles();
        var clients = new List<StompTestClient>();
        try
        {
            for (var i = 0; i < Connections; i++)
            {
                clients.Add(await server.ConnectClientAsync(i % 2 == 0 ? Transport.Tcp : Transport.WebSocket));
            }

            // Each client holds one socket of this process. Were the broker's ends file descriptors too (as with
            // the socket transport), the count would grow by twice as many.
            var grown = OpenFiles() - before;
            Assert.True(grown < Connections + 30, $"{grown} more open files for {Connections} connections: the broker's ends are file descriptors");
            Assert.True(grown >= Connections, $"only {grown} more open files for {Connections} client sockets: the count is not what this test thinks");
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }

        await server.AssertStillServesOthersAsync();
    }

    [Fact]
    public async Task When_every_ring_is_full_a_new_connection_waits_until_one_closes()
    {
        // Two rings of three slots. A ring arms an accept only with a slot free for it (an accept the table cannot
        // hold would reset the connection), and both listeners' accepts are armed, so each ring holds two TCP
        // connections and keeps its third slot for the WebSocket listener.
        await using var server = await BrokerServer.StartAsync(IoUring, "Broker:IoUring:Rings=2", "Broker:IoUring:SlotsPerRing=3", "Broker:Limits:MaxConnections=0");
        var held = new List<StompTestClient>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                held.Add(await server.ConnectClientAsync());
            }

            // The kernel completes the TCP handshake into the listen backlog; the broker takes it once a slot is free.
            await using var waiting = await server.OpenAsync(Transport.Tcp);
            await waiting.SendFrameAsync(StompCommand.Connect, [("accept-version", "1.2"), ("host", "/")]);
            Assert.Null(await waiting.TryReceiveAsync(TimeSpan.FromMilliseconds(500)));

            // The other listener is still served, in the slot kept for it.
            held.Add(await server.ConnectClientAsync(Transport.WebSocket));

            await held[0].SendFrameAsync(StompCommand.Disconnect, [("receipt", "bye")]);
            await held[0].ExpectReceiptAsync("bye");
            await held[0].DisposeAsync();
            var connected = await waiting.ReceiveAsync();
            Assert.Equal(StompCommand.Connected, connected.Command);

            // The rest were never disturbed.
            foreach (var client in held.Skip(1))
            {
                await client.AssertAliveAsync();
            }
        }
        finally
        {
            foreach (var client in held)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Theory]
    [InlineData(Transport.Tcp, Transport.WebSocket)]
    [InlineData(Transport.WebSocket, Transport.Tcp)]
    public async Task Large_and_many_frames_arrive_whole_and_in_order(Transport from, Transport to)
    {
        await using var server = await BrokerServer.StartAsync(IoUring);
        await using var consumer = await server.ConnectClientAsync(to);
        await using var producer = await server.ConnectClientAsync(from);
        var queue = Unique.Queue("uring");
        await consumer.SubscribeAsync(queue, "s");

        // 1 MiB: many receive buffers (16 KiB each) on the way in, many sends on the way out.
        var large = RandomNumberGenerator.GetBytes(1024 * 1024);
        await producer.SendFrameAsync(StompCommand.Send, [("destination", queue), ("content-length", large.Length.ToString(CultureInfo.InvariantCulture))], large);
        for (var i = 0; i < 500; i++)
        {
            await producer.SendAsync(queue, i.ToString(CultureInfo.InvariantCulture), receipt: i == 499);
        }

        var first = await consumer.ReceiveMessageAsync();
        Assert.Equal(large, first.Body);
        for (var i = 0; i < 500; i++)
        {
            Assert.Equal(i.ToString(CultureInfo.InvariantCulture), (await consumer.ReceiveMessageAsync()).BodyText);
        }
    }

    [Fact]
    public async Task A_malformed_frame_gets_an_error_and_a_close_and_others_go_on()
    {
        await using var server = await BrokerServer.StartAsync(IoUring);
        await using var bystander = await server.ConnectClientAsync(Transport.WebSocket);
        await using var client = await server.ConnectClientAsync();
        await client.SendRawAsync("SEND\ndestination:/queue/x\ncontent-length:zz\n\nbody\0");
        var frames = await client.ExpectClosedAsync();
        var error = Assert.Single(frames);
        Assert.Equal(StompCommand.Error, error.Command);
        Assert.False(string.IsNullOrEmpty(error["message"]));
        await bystander.AssertAliveAsync();
        await server.AssertStillServesOthersAsync();
    }

    [Fact]
    public async Task A_subscriber_that_never_reads_is_cut_even_with_a_send_pending_and_others_get_everything()
    {
        // The broker's write to the non-reading peer stays pending in the ring once the peer's window is full; cutting
        // the connection must end that send (a shutdown), or the connection and its slot would never be freed.
        await using var server = await BrokerServer.StartAsync(IoUring, "Broker:Outbound:MaxBufferedBytes=65536");
        var topic = Unique.Topic("flood");
        using var slow = await RawSocket.ConnectAsync(server.TcpPort, receiveBufferSize: 4096);
        Assert.True(await slow.TrySendAsync("CONNECT\naccept-version:1.2\nhost:/\n\n\0"));
        Assert.Equal(StompCommand.Connected, (await slow.ReadFrameAsync(StompTestClient.DefaultTimeout))?.Command);
        Assert.True(await slow.TrySendAsync($"SUBSCRIBE\ndestination:{topic}\nid:slow\nreceipt:sub\n\n\0"));
        Assert.Equal(StompCommand.Receipt, (await slow.ReadFrameAsync(StompTestClient.DefaultTimeout))?.Command);
        await using var normal = await server.ConnectClientAsync();
        await normal.SubscribeAsync(topic, "normal");
        await using var producer = await server.ConnectClientAsync();

        var body = new string('x', 4096);
        var sent = 0;
        var closed = false;
        while (sent < 4000 && !closed)
        {
            for (var i = 0; i < 8; i++, sent++)
            {
                await producer.SendAsync(topic, body, receipt: i == 7);
            }

            for (var i = 0; i < 8; i++)
            {
                Assert.Equal(body, (await normal.ReceiveMessageAsync()).BodyText);
            }

            closed = !await slow.TrySendAsync("\n");
        }

        Assert.True(closed || await slow.WaitForServerCloseAsync(TimeSpan.FromSeconds(15)), $"the subscriber that never reads is still connected after {sent} messages");
        await server.WaitForConnectionCountAsync(2);
        await normal.AssertAliveAsync();
        await server.AssertStillServesOthersAsync();
    }

    [Fact]
    public async Task Stopping_the_broker_closes_its_connections_and_ends_the_rings_threads()
    {
        var server = await BrokerServer.StartAsync(IoUring);
        await using var tcp = await server.ConnectClientAsync();
        await using var webSocket = await server.ConnectClientAsync(Transport.WebSocket);
        Assert.NotEmpty(RingThreads());

        await server.DisposeAsync();

        // Each is told (an ERROR naming the shutdown) and closed.
        Assert.Contains((await tcp.ExpectClosedAsync()), f => f.Command == StompCommand.Error);
        await webSocket.ExpectClosedAsync();
        await Wait.UntilAsync(() => RingThreads().Count == 0, TimeSpan.FromSeconds(10), "the rings' threads to end");
    }

    private static int OpenFiles() => Directory.GetFileSystemEntries("/proc/self/fd").Length;

    // Threads are named "io_uring N" by the transport (the kernel shows the first 15 characters).
    private static List<string> RingThreads() =>
        [.. Directory.GetDirectories("/proc/self/task")
            .Select(task => { try { return File.ReadAllText(Path.Combine(task, "comm")).Trim(); } catch (IOException) { return ""; } })
            .Where(name => name.StartsWith("io_uring ", StringComparison.Ordinal))];
}

using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>
/// Mutated valid frames against a live broker over TCP and WebSocket, with fixed seeds. Each connection sends its
/// batch, half-closes, and must end within a deadline, either after ordinary processing or with ERROR then close;
/// afterwards the broker has no connection left and serves a normal client. The mutations are the parser fuzz test's
/// (tests/Broker.Stomp.Tests/FuzzTests.cs): flipped and replaced bytes, truncation, duplicated header lines, huge and
/// malformed content-lengths, invalid UTF-8, stray EOLs and NULs, bodies on bodiless frames, frames glued together.
/// </summary>
[Collection(RunAloneGroup.Name)]
public sealed class LiveFuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    public const int TcpSeed = 7_340_001;
    public const int WebSocketSeed = 7_340_002;

    [Theory]
    [InlineData(Transport.Tcp, TcpSeed, 500)]
    [InlineData(Transport.WebSocket, WebSocketSeed, 300)]
    public async Task Thousands_of_mutated_frames_end_every_connection_and_leave_the_broker_serving(Transport transport, int seed, int connections)
    {
        await using var server = await BrokerServer.StartAsync(LiveFuzz.BrokerSettings);
        var cases = LiveFuzz.Generate(seed, connections);
        var stats = await LiveFuzz.RunAsync(server, transport, seed, cases);
        output.WriteLine($"seed {seed}: {stats}");

        // The seed reached both outcomes, and real work was done, or the fuzzing proved little.
        Assert.True(stats.Frames >= 2000, $"seed {seed}: only {stats.Frames} frames");
        Assert.True(stats.Errors > connections / 10, $"seed {seed}: only {stats.Errors} connections ended in ERROR; {stats}");
        Assert.True(stats.Clean > connections / 10, $"seed {seed}: only {stats.Clean} connections ended without ERROR; {stats}");
        Assert.True(stats.Receipts > connections / 10, $"seed {seed}: only {stats.Receipts} RECEIPTs; {stats}");

        await server.WaitForNoConnectionsAsync();
        await server.AssertStillServesOthersAsync();
    }
}

/// <summary>The live fuzzer, also used by the memory test.</summary>
internal static class LiveFuzz
{
    /// <summary>Small limits, so huge lengths and long lines hit a limit at once; a short unacked limit keeps deliveries small.</summary>
    public static readonly string[] BrokerSettings =
    [
        "Broker:Limits:MaxFrameBytes=65536",
        "Broker:Limits:MaxFrameBytesBeforeConnect=4096",
        "Broker:Limits:MaxHeaderLineBytes=1024",
        "Broker:Limits:MaxHeaders=64",
        "Broker:Limits:MaxUnackedPerConnection=20",
        "Broker:Limits:ConnectTimeout=00:00:05",
    ];

    private const int FramesPerConnection = 6;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static readonly byte[] Connect = Encoding.UTF8.GetBytes("CONNECT\naccept-version:1.0,1.1,1.2\nhost:/\nheart-beat:0,0\n\n\0");

    // What a real client sends, on a few fixed destinations so the fuzzing does not create thousands of queues. Each
    // entry is valid in any order and any number of times ({n}: a number unique on the connection), so a connection
    // whose frames escaped mutation is processed normally.
    private static readonly string[] Corpus =
    [
        "SEND\ndestination:/queue/fuzz\ncontent-type:text/plain\nreceipt:r-send-{n}\n\nhello\0",
        "SEND\ndestination:/topic/fuzz\ncontent-length:5\n\nhe\0lo\0",
        "SEND\ndestination:/queue/fuzz\nreply-to:/temp-queue/replies\n\nrequest\0",
        "SEND\ndestination:/queue/fuzz\nh\\c1:v\\n\\r\\\\\nreceipt:r-esc-{n}\n\ncaf\u00e9 \u2603\0",
        "SUBSCRIBE\ndestination:/queue/fuzz\nid:s{n}\nack:client-individual\nreceipt:r-sub-{n}\n\n\0",
        "SUBSCRIBE\ndestination:/topic/fuzz\nid:s{n}\nack:client\n\n\0",
        "SUBSCRIBE\ndestination:/queue/fuzz-other\nid:s{n}\nprefetch-count:2\n\n\0UNSUBSCRIBE\nid:s{n}\nreceipt:r-unsub-{n}\n\n\0",
        "BEGIN\ntransaction:t{n}\n\n\0SEND\ndestination:/queue/fuzz\ntransaction:t{n}\n\nin a transaction\0COMMIT\ntransaction:t{n}\nreceipt:r-commit-{n}\n\n\0",
        "BEGIN\ntransaction:t{n}\nreceipt:r-begin-{n}\n\n\0ABORT\ntransaction:t{n}\n\n\0",
        "SEND\ndestination:/queue/fuzz\n\n\0",
        "\n",
        "\r\n",
    ];

    // Refused even when intact (no such message to acknowledge): rarer.
    private static readonly string[] Refused = ["ACK\nid:session-x-1\n\n\0", "NACK\nid:1\nreceipt:r-nack\n\n\0"];

    private static readonly byte[] Disconnect = Encoding.UTF8.GetBytes("DISCONNECT\nreceipt:r-bye\n\n\0");

    private static readonly byte[][] Interesting =
    [
        [0], [(byte)'\n'], [(byte)'\r'], [(byte)':'], [(byte)'\\'], [0xFF], [0xC3], [0x80], [(byte)' '], [(byte)'\r', (byte)'\n'],
        [0xED, 0xA0, 0x80], [0xF0, 0x9F], [0xC0, 0xAF], [(byte)'\\', (byte)'t'], [(byte)'\\', (byte)'r'],
    ];

    private static readonly string[] ContentLengths =
    [
        "1073741824", "99999999999", "9223372036854775808", "99999999999999999999", "2147483647", "2147483648", "65536", "65537",
        "-1", "", "abc", "0", "1", "5", "00", " 3", "3 ",
    ];

    /// <summary>One connection's input: the chunks it writes (WebSocket: one message each) and a description.</summary>
    public sealed record Case(int Index, byte[][] Chunks)
    {
        public string Hex => Convert.ToHexString([.. Chunks.SelectMany(c => c)]);
    }

    public sealed record Stats(int Connections, int Frames, int Errors, int Clean, int Resets, int Receipts, IReadOnlyDictionary<string, int> ErrorMessages)
    {
        public override string ToString() =>
            $"{Connections} connections, {Frames} frames: {Errors} ERROR, {Clean} without, {Resets} reset, {Receipts} RECEIPTs; ERRORs: "
            + string.Join(", ", ErrorMessages.OrderByDescending(e => e.Value).Take(12).Select(e => $"'{e.Key}' {e.Value}"));
    }

    public static List<Case> Generate(int seed, int connections)
    {
        var random = new Random(seed);
        var cases = new List<Case>(connections);
        for (var index = 0; index < connections; index++)
        {
            var frames = new List<byte[]>();
            // Most connections CONNECT properly so the mutations reach the connected state; some fuzz CONNECT itself.
            frames.Add(random.Next(8) == 0 ? Mutate(random, Connect) : Connect);
            var mutated = new bool[FramesPerConnection];
            for (var m = random.Next(4); m > 0; m--)
            {
                mutated[random.Next(FramesPerConnection)] = true;
            }

            for (var i = 0; i < FramesPerConnection; i++)
            {
                var frame = i == FramesPerConnection - 1 && random.Next(4) == 0
                    ? Disconnect
                    : Encoding.UTF8.GetBytes((random.Next(30) == 0 ? Refused[random.Next(2)] : Corpus[random.Next(Corpus.Length)]).Replace("{n}", i.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
                frames.Add(mutated[i] ? Mutate(random, frame) : frame);
            }

            // Chunking: frames glued into one write (one WebSocket message), or one frame split over two.
            var chunks = new List<byte[]>();
            foreach (var frame in frames)
            {
                var roll = random.Next(10);
                if (roll == 0 && chunks.Count > 0)
                {
                    chunks[^1] = [.. chunks[^1], .. frame];
                }
                else if (roll == 1 && frame.Length > 1)
                {
                    var at = random.Next(1, frame.Length);
                    chunks.Add(frame[..at]);
                    chunks.Add(frame[at..]);
                }
                else
                {
                    chunks.Add(frame);
                }
            }

            cases.Add(new Case(index, [.. chunks]));
        }

        return cases;
    }

    public static async Task<Stats> RunAsync(BrokerServer server, Transport transport, int seed, List<Case> cases)
    {
        var failures = new ConcurrentBag<string>();
        int errors = 0, clean = 0, resets = 0, receipts = 0;
        var messages = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (fuzzCase, _) =>
        {
            var end = transport == Transport.Tcp ? await RunTcpAsync(server, fuzzCase) : await RunWebSocketAsync(server, fuzzCase);
            var where = $"seed {seed}, {transport}, case {fuzzCase.Index}, input {fuzzCase.Hex}";
            if (end is null)
            {
                failures.Add($"the connection did not end within {Deadline.TotalSeconds} s; {where}");
                return;
            }

            if (Judge(end) is { } problem)
            {
                failures.Add($"{problem}; received [{string.Join(" | ", end.Frames)}]; {where}");
                return;
            }

            Interlocked.Add(ref receipts, end.Frames.Count(f => f.Command == StompCommand.Receipt));
            if (end.Frames.Count > 0 && end.Frames[^1].Command == StompCommand.Error)
            {
                Interlocked.Increment(ref errors);
                var message = end.Frames[^1]["message"]!;
                messages.AddOrUpdate(message.Length > 40 ? message[..40] : message, 1, (_, n) => n + 1);
            }
            else if (end.Reset)
            {
                Interlocked.Increment(ref resets);
            }
            else
            {
                Interlocked.Increment(ref clean);
            }
        });

        Assert.True(failures.IsEmpty, $"{failures.Count} of {cases.Count} connections failed (seed {seed}); the first:\n{string.Join("\n", failures.Take(3))}");
        return new Stats(cases.Count, cases.Count * (FramesPerConnection + 1), errors, clean, resets, receipts, messages);
    }

    // What the broker sent must be whole server frames, an ERROR only last, and never an internal error.
    private static string? Judge(ServerEnd end)
    {
        if (end.ParseError is { } error)
        {
            return $"the broker sent bytes that do not parse: {error}";
        }

        if (!end.Reset && end.LeftoverBytes != 0)
        {
            return $"{end.LeftoverBytes} bytes after the last whole frame";
        }

        for (var i = 0; i < end.Frames.Count; i++)
        {
            var frame = end.Frames[i];
            if (frame.Command is not (StompCommand.Connected or StompCommand.Message or StompCommand.Receipt or StompCommand.Error))
            {
                return $"the broker sent a {frame.Command} frame";
            }

            if (frame.Command == StompCommand.Error && i != end.Frames.Count - 1)
            {
                return "frames after an ERROR";
            }

            if (frame.Command == StompCommand.Error && (frame["message"] is null or "internal error"))
            {
                return $"ERROR '{frame["message"]}'";
            }
        }

        return null;
    }

    private static async Task<ServerEnd?> RunTcpAsync(BrokerServer server, Case fuzzCase)
    {
        using var socket = await RawSocket.ConnectAsync(server.TcpPort);
        foreach (var chunk in fuzzCase.Chunks)
        {
            if (!await socket.TrySendAsync(chunk))
            {
                break; // the broker refused and closed already
            }
        }

        try
        {
            socket.Socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
        }

        return await socket.ReadUntilClosedAsync(Deadline);
    }

    private static async Task<ServerEnd?> RunWebSocketAsync(BrokerServer server, Case fuzzCase)
    {
        var (socket, status) = await WebSockets.TryOpenAsync(server.WebSocketUri);
        using (socket)
        {
            Assert.Equal(System.Net.HttpStatusCode.SwitchingProtocols, status);
            using var deadline = new CancellationTokenSource(Deadline);
            var reset = false;
            try
            {
                foreach (var chunk in fuzzCase.Chunks)
                {
                    await WebSockets.SendAsync(socket, chunk, deadline.Token);
                }

                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", deadline.Token);
            }
            catch (WebSocketException)
            {
                reset = true;
            }
            catch (OperationCanceledException)
            {
                return null;
            }

            var received = new ArrayBufferWriter<byte>();
            var buffer = new byte[16 * 1024];
            try
            {
                while (socket.State is WebSocketState.Open or WebSocketState.CloseSent)
                {
                    var result = await socket.ReceiveAsync(buffer, deadline.Token);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        break;
                    }

                    received.Write(buffer.AsSpan(0, result.Count));
                }
            }
            catch (WebSocketException)
            {
                reset = true;
            }
            catch (OperationCanceledException)
            {
                return null;
            }

            return ServerFrames.Parse(received.WrittenMemory, reset);
        }
    }

    private static byte[] Mutate(Random random, byte[] frame)
    {
        var data = frame.ToList();
        var mutations = random.Next(1, 4);
        for (var m = 0; m < mutations; m++)
        {
            switch (random.Next(13))
            {
                case 0 when data.Count > 0:
                    data[random.Next(data.Count)] ^= (byte)(1 << random.Next(8)); // a flipped bit
                    break;
                case 1 when data.Count > 0:
                    data[random.Next(data.Count)] = (byte)random.Next(256);
                    break;
                case 2 when data.Count > 0:
                    var at = random.Next(data.Count);
                    data.RemoveAt(at);
                    data.InsertRange(at, Interesting[random.Next(Interesting.Length)]);
                    break;
                case 3 when data.Count > 0:
                    data.RemoveAt(random.Next(data.Count));
                    break;
                case 4:
                    data = data.Take(random.Next(data.Count + 1)).ToList(); // truncated
                    break;
                case 5:
                    DuplicateHeaderLine(random, data);
                    break;
                case 6:
                    SetContentLength(data, ContentLengths[random.Next(ContentLengths.Length)]);
                    break;
                case 7:
                    data.InsertRange(random.Next(HeaderEnd(data) + 1), Interesting[random.Next(5, Interesting.Length)]); // invalid UTF-8 in a header
                    break;
                case 8:
                    data.AddRange(Encoding.UTF8.GetBytes(Corpus[random.Next(Corpus.Length)].Replace("{n}", "x", StringComparison.Ordinal))); // another frame glued on
                    break;
                case 9:
                    data.InsertRange(random.Next(data.Count + 1), Encoding.ASCII.GetBytes(random.Next(3) switch { 0 => "\n", 1 => "\r\n", _ => "\r" }));
                    break;
                case 10:
                    var junk = new byte[random.Next(1, 8)];
                    random.NextBytes(junk);
                    data.InsertRange(random.Next(data.Count + 1), junk);
                    break;
                case 11:
                    // A body where the command allows none (SUBSCRIBE, ACK, BEGIN...), or a longer one elsewhere.
                    var nul = data.LastIndexOf(0);
                    data.InsertRange(nul < 0 ? data.Count : nul, Encoding.UTF8.GetBytes(random.Next(2) == 0 ? "a body" : new string('b', random.Next(1, 3000))));
                    break;
                default:
                    data.InsertRange(random.Next(HeaderEnd(data) + 1), Interesting[random.Next(Interesting.Length)]);
                    break;
            }
        }

        return [.. data];
    }

    private static int HeaderEnd(List<byte> data)
    {
        for (var i = 0; i + 1 < data.Count; i++)
        {
            if (data[i] == '\n' && (data[i + 1] == '\n' || (data[i + 1] == '\r' && i + 2 < data.Count && data[i + 2] == '\n')))
            {
                return i;
            }
        }

        return data.Count;
    }

    private static void DuplicateHeaderLine(Random random, List<byte> data)
    {
        var first = data.IndexOf((byte)'\n');
        var end = HeaderEnd(data);
        if (first < 0 || first >= end)
        {
            return;
        }

        var start = random.Next(first + 1, end + 1);
        while (start > first + 1 && data[start - 1] != '\n')
        {
            start--;
        }

        var stop = data.IndexOf((byte)'\n', start);
        if (stop < 0)
        {
            return;
        }

        var line = data.GetRange(start, stop - start + 1);
        for (var copies = random.Next(1, 4); copies > 0; copies--)
        {
            data.InsertRange(start, line);
        }
    }

    private static void SetContentLength(List<byte> data, string value)
    {
        var text = Encoding.Latin1.GetString([.. data]);
        var at = text.IndexOf("content-length:", StringComparison.Ordinal);
        var replacement = Encoding.ASCII.GetBytes("content-length:" + value + "\n");
        if (at >= 0)
        {
            var stop = text.IndexOf('\n', at);
            data.RemoveRange(at, (stop < 0 ? text.Length : stop + 1) - at);
            data.InsertRange(at, replacement);
            return;
        }

        var first = data.IndexOf((byte)'\n');
        data.InsertRange(first < 0 ? data.Count : first + 1, replacement);
    }
}

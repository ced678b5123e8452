# Builds both binaries in one image: run `worker` or `publisher`.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/callagent/resilience/internal/cli.Version=${VERSION}" \
      -o /out/ ./worker ./publisher

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/publisher /usr/local/bin/
COPY deploy/contacts.json /deploy/contacts.json
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/worker"]

// name: circuit-files
// description: Where one circuit's files are on the machine that ingested it: its folder (circuit.json,
//   vectors.npz, thumbnails/) and, with image, that image's path when it is one of the circuit's images
//   (`neurflow serve` sends only these files).
// param: circuit (string, required) circuit id
// param: image (string, default null) an image's sha256; default: no image
MATCH (c:Circuit {id: $circuit})
OPTIONAL CALL (c) {
  MATCH (c)-[:HAS_IMAGE]->(im:Image {sha256: $image})
  RETURN im.path AS imagePath
}
RETURN c.id AS circuit, c.folder AS folder, imagePath
